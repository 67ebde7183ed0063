#include "shoal/arrays.h"

#include <gtest/gtest.h>

#include <cstring>

namespace shoal {
namespace {

TEST(PartitionBounds, AsIPythonParallelsBlockMap) {
  struct Case {
    size_t n, parts;
    std::vector<std::pair<size_t, size_t>> want;
  } cases[] = {
      {10, 3, {{0, 4}, {4, 7}, {7, 10}}},
      {2, 4, {{0, 1}, {1, 2}, {2, 2}, {2, 2}}},
      {0, 2, {{0, 0}, {0, 0}}},
      {6, 2, {{0, 3}, {3, 6}}},
  };
  for (const auto& c : cases)
    for (size_t p = 0; p < c.parts; ++p)
      EXPECT_EQ(PartitionBounds(c.n, p, c.parts), c.want[p]) << c.n << "/" << c.parts << " p" << p;
}

std::string_view Sv(const char* s, size_t n) { return {s, n}; }

TEST(ParseBytesReply, InBandOutOfBandAndBadShapes) {
  // cloudpickle.dumps(struct.pack('<2d', 1.5, -2.0), protocol=5)
  const char small[] =
      "\x80\x05\x95\x14\x00\x00\x00\x00\x00\x00\x00"
      "C\x10"
      "\x00\x00\x00\x00\x00\x00\xf8?\x00\x00\x00\x00\x00\x00\x00\xc0\x94.";
  auto v = pickle5::ParseBytesReply({Sv(small, sizeof small - 1)});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, (std::vector<double>{1.5, -2.0}));

  // cloudpickle.dumps(b'', protocol=5): an empty array
  const char empty[] =
      "\x80\x05\x95\x04\x00\x00\x00\x00\x00\x00\x00"
      "C\x00\x94.";
  EXPECT_EQ(pickle5::ParseBytesReply({Sv(empty, sizeof empty - 1)})->size(), 0u);

  // Large values come as the pickle plus one out-of-band frame holding the bytes.
  double big[3] = {1, 2, 3};
  auto oob = pickle5::ParseBytesReply({"\x80\x05(ignored).", Sv(reinterpret_cast<char*>(big), 24)});
  ASSERT_TRUE(oob.ok());
  EXPECT_EQ(*oob, (std::vector<double>{1, 2, 3}));

  struct Bad {
    std::vector<std::string_view> frames;
    const char* why;
  } bad[] = {
      {{}, "no frames"},
      {{Sv("\x80\x05K*.", 5)}, "not bytes"},  // the int 42
      {{Sv("\x80\x05\x95\x07\x00\x00\x00\x00\x00\x00\x00"
           "C\x03"
           "abc\x94.",
           18)},
       "multiple of 8"},
      {{Sv("\x80\x05\x95\x07\x00\x00\x00\x00\x00\x00\x00"
           "C\x10"
           "ab",
           15)},
       "truncated"},
      {{Sv("junk", 4)}, "no pickle header"},
      {{"a", "b", "c"}, "more than one buffer"},
  };
  for (const auto& b : bad) {
    auto r = pickle5::ParseBytesReply(b.frames);
    ASSERT_FALSE(r.ok()) << b.why;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(b.why), std::string::npos) << r.status().message();
  }
}

TEST(PushRequest, PicklesTheNameAndSendsTheValuesAsTheirOwnFrame) {
  std::vector<double> x = {1, 2, 3};
  Frames f = pickle5::PushRequest("x", x);
  ASSERT_EQ(f.size(), 3u);  // the function, the arguments, their buffer
  EXPECT_EQ(f[2].size(), 24u);
  EXPECT_EQ(std::memcmp(f[2].data(), x.data(), 24), 0);
  std::string fn(static_cast<const char*>(f[0].data()), f[0].size());
  EXPECT_EQ(fn, std::string("\x80\x05\x8c\x0dshoal._remote\x8c\x04push\x93.", 25));
  std::string p(static_cast<const char*>(f[1].data()), f[1].size());
  EXPECT_EQ(p.substr(0, 2), "\x80\x05");
  EXPECT_NE(p.find("frombuffer"), std::string::npos);
  EXPECT_EQ(p.back(), '.');
  // A name of 256+ bytes takes the 4-byte-length string opcode.
  std::string long_name(300, 'a');
  Frames long_frames = pickle5::PushRequest(long_name, x);
  std::string q(static_cast<const char*>(long_frames[1].data()), long_frames[1].size());
  EXPECT_NE(q.find(std::string("X\x2c\x01\x00\x00", 5) + long_name), std::string::npos);
}

}  // namespace
}  // namespace shoal
