#include "shoal/store/blob_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace shoal::store {
namespace {

std::vector<std::string> Strings(const std::vector<Blob>& blobs) {
  std::vector<std::string> out;
  for (const Blob& b : blobs) out.emplace_back(b.view());
  return out;
}

TEST(BlobCodecTest, RoundTrips) {
  const std::vector<std::vector<std::string>> cases = {
      {}, {""}, {"", "", ""}, {"a"}, {std::string("\0\xff\0", 3), "plain", std::string(70000, 'z')},
  };
  for (const auto& c : cases) {
    std::vector<Blob> blobs;
    for (const std::string& s : c) blobs.push_back(Blob::Copy(s));
    auto decoded = DecodeBlobs(EncodeBlobs(blobs));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(Strings(*decoded), c);
  }
}

TEST(BlobCodecTest, EncodingIsStable) {
  EXPECT_EQ(EncodeBlobs({Blob::Copy("hi")}), std::string("SHB1\x01\0\0\0\x02\0\0\0\0\0\0\0hi", 18));
}

TEST(BlobCodecTest, RejectsCorruptInput) {
  const std::string good = EncodeBlobs({Blob::Copy("abc"), Blob::Copy("de")});
  const std::string cases[] = {
      "",
      "SHB",
      std::string("\x80\x04\x95\x05", 4),                                 // a pickle
      "SHB1",                                                             // no count
      std::string("SHB1\x01\0\0\0", 8),                                   // no length
      std::string("SHB1\x01\0\0\0\x09\0\0\0\0\0\0\0abc", 19),             // length past the end
      std::string("SHB1\x01\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff", 16),  // huge length
      good + "x",                                                         // trailing bytes
      good.substr(0, good.size() - 1),                                    // truncated
  };
  for (const std::string& c : cases) {
    auto decoded = DecodeBlobs(c);
    ASSERT_FALSE(decoded.ok()) << testing::PrintToString(c);
    EXPECT_EQ(decoded.status().code(), StatusCode::kIOError);
  }
}

}  // namespace
}  // namespace shoal::store
