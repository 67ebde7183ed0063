#include "shoal/wire/signer.h"

#include <gtest/gtest.h>

namespace shoal::wire {
namespace {

TEST(Signer, MatchesKnownHmacSha256) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  auto s = Signer::Create("Jefe");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Sign("what do ya ", "want for ", "nothing", "?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Signer, LongKeysAreHashedFirst) {
  // RFC 4231 test case 6: 131-byte key of 0xaa.
  auto s = Signer::Create(std::string(131, '\xaa'));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Sign("Test Using Larger Than Block-Size Key - Hash Key First", "", "", ""),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Signer, EmptyKeyDisablesSigning) {
  auto s = Signer::Create("");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Sign("a", "b", "c", "d"), "");
  EXPECT_TRUE((*s)->Check("", "a", "b", "c", "d").ok());
}

TEST(Signer, ChecksRejectUnsignedForgedAndReplayed) {
  auto s = std::move(Signer::Create("secret").value());
  std::string sig = s->Sign("h", "p", "m", "c");
  struct Case {
    std::string sig, header;
    const char* error;  // nullptr = OK
  } cases[] = {
      {"", "h", "Unsigned Message"},
      {std::string(64, '0'), "h", "Invalid Signature"},
      {sig, "H", "Invalid Signature"},
      {sig.substr(1), "h", "Invalid Signature"},
      {sig, "h", nullptr},
      {sig, "h", "Duplicate Signature"},
  };
  for (const auto& c : cases) {
    Status st = s->Check(c.sig, c.header, "p", "m", "c");
    if (c.error == nullptr) {
      EXPECT_TRUE(st.ok()) << st.ToString();
    } else {
      EXPECT_EQ(st.code(), StatusCode::kProtocolError);
      EXPECT_EQ(st.message(), c.error);
    }
  }
}

TEST(Signer, PeekDoesNotRecord) {
  auto s = std::move(Signer::Create("secret").value());
  std::string sig = s->Sign("h", "p", "m", "c");
  EXPECT_TRUE(s->Check(sig, "h", "p", "m", "c", /*record=*/false).ok());
  EXPECT_TRUE(s->Check(sig, "h", "p", "m", "c").ok());
}

TEST(Signer, OtherSchemes) {
  auto md5 = Signer::Create("key", "hmac-md5");
  ASSERT_TRUE(md5.ok());
  EXPECT_EQ((*md5)->Sign("The quick brown fox ", "jumps over ", "the lazy ", "dog"),
            "80070713463e7749b90c2dc24911e275");
  EXPECT_EQ(Signer::Create("k", "sha256").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Signer::Create("k", "hmac-nosuch").status().code(), StatusCode::kInvalidArgument);
}

TEST(Signer, HistoryIsBounded) {
  auto s = std::move(Signer::Create("k").value());
  for (size_t i = 0; i < Signer::kHistorySize + 10; ++i) {
    std::string h = std::to_string(i);
    ASSERT_TRUE(s->Check(s->Sign(h, "", "", ""), h, "", "", "").ok());
  }
}

}  // namespace
}  // namespace shoal::wire
