#include "shoal/wire/message.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "shoal/wire/ids.h"

namespace shoal::wire {
namespace {

std::string Base64Decode(const std::string& in) {
  static const std::string kChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=') break;
    val = (val << 6) + static_cast<int>(kChars.find(c));
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

class Golden : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(std::string(SHOAL_SOURCE_DIR) + "/tests/golden/frames.json");
    ASSERT_TRUE(in) << "golden frames missing";
    std::stringstream ss;
    ss << in.rdbuf();
    golden_ = Json::parse(ss.str());
    signer_ = std::move(Signer::Create(golden_["key"].get<std::string>()).value());
  }
  Frames Load(const char* name) {
    Frames f;
    for (const auto& b64 : golden_[name]) {
      std::string bytes = Base64Decode(b64.get<std::string>());
      f.emplace_back(bytes.data(), bytes.size());
    }
    return f;
  }
  Json golden_;
  std::unique_ptr<Signer> signer_;
};

TEST_F(Golden, DecodesClientRequest) {
  Message m;
  ASSERT_TRUE(Decode(Load("connection_request"), signer_.get(), {}, m).ok());
  EXPECT_EQ(m.num_identities(), 0u);
  EXPECT_EQ(m.msg_type(), "connection_request");
  EXPECT_EQ(m.header["version"], "5.3");
  EXPECT_EQ(m.header["session"], "81b4f1ea-0736ab5275e656c01b7e6420");
  EXPECT_EQ(m.num_buffers(), 0u);
}

TEST_F(Golden, DecodesIdentitiesAndBuffers) {
  Message m;
  DecodeOptions opts;
  opts.parse_content = true;
  ASSERT_TRUE(Decode(Load("apply_request_mux"), signer_.get(), opts, m).ok());
  ASSERT_EQ(m.num_identities(), 1u);
  EXPECT_EQ(m.identity(0), "25bc4b1d-b8bdf253e0b1263bfb18bc78");
  ASSERT_EQ(m.num_buffers(), 2u);
  EXPECT_EQ(View(m.buffer(0)), std::string("\x80\x04K*.", 5));
  EXPECT_TRUE(m.content.is_object());
}

TEST_F(Golden, DecodesReplyParentAndMetadata) {
  Message m;
  ASSERT_TRUE(Decode(Load("apply_reply"), signer_.get(), {}, m).ok());
  EXPECT_EQ(m.msg_type(), "apply_reply");
  EXPECT_EQ(m.parent["msg_type"], "apply_request");
  EXPECT_FALSE(m.parent_msg_id().empty());
  EXPECT_EQ(m.metadata["dependencies_met"], true);
}

TEST_F(Golden, DecodesUnicode) {
  Message m;
  DecodeOptions opts;
  opts.parse_content = true;
  ASSERT_TRUE(Decode(Load("unicode_stream"), signer_.get(), opts, m).ok());
  EXPECT_EQ(m.identity(0), "engine.0.stdout");
  EXPECT_EQ(m.content["text"], "h\xc3\xa9llo \xe2\x9c\x93\n");
}

TEST_F(Golden, RejectsReplayAndTampering) {
  Message m;
  ASSERT_TRUE(Decode(Load("apply_reply"), signer_.get(), {}, m).ok());
  EXPECT_EQ(Decode(Load("apply_reply"), signer_.get(), {}, m).message(), "Duplicate Signature");
  Frames f = Load("apply_request_task");
  std::string meta = std::string(View(f[kMetadataOffset])) + " ";  // no identities here
  f[kMetadataOffset] = zmq::message_t(meta.data(), meta.size());
  EXPECT_EQ(Decode(std::move(f), signer_.get(), {}, m).message(), "Invalid Signature");
}

TEST_F(Golden, EncodeMatchesSessionSignatures) {
  // Re-encoding the parsed parts with the same key must verify on a fresh signer.
  Message m;
  ASSERT_TRUE(Decode(Load("apply_reply"), signer_.get(), {.parse_content = true}, m).ok());
  Frames out = Encode({"id"}, m.header, m.parent, m.metadata, m.content, *signer_);
  auto fresh = std::move(Signer::Create(golden_["key"].get<std::string>()).value());
  Message back;
  ASSERT_TRUE(Decode(std::move(out), fresh.get(), {.parse_content = true}, back).ok());
  EXPECT_EQ(back.header, m.header);
  EXPECT_EQ(back.identity(0), "id");
}

TEST(Decode, MalformedFramesAreProtocolErrors) {
  auto signer = std::move(Signer::Create("").value());
  auto frames = [](std::vector<std::string> parts) {
    Frames f;
    for (auto& p : parts) f.emplace_back(p.data(), p.size());
    return f;
  };
  struct Case {
    std::vector<std::string> parts;
    const char* why;
  } cases[] = {
      {{}, "no <IDS|MSG> delimiter"},
      {{"a", "b"}, "no <IDS|MSG> delimiter"},
      {{"<IDS|MSG>", "", "{}", "{}", "{}"}, "fewer than 5 frames after the delimiter"},
      {{"<IDS|MSG>", "", "{", "{}", "{}", "{}"}, "malformed JSON in header"},
      {{"<IDS|MSG>", "", "[]", "{}", "{}", "{}"}, "header is not a JSON object"},
      {{"<IDS|MSG>", "", "{}", "{}", "{}", "{}"}, "header lacks msg_id or msg_type"},
      {{"<IDS|MSG>", "", R"({"msg_id":"a","msg_type":"b"})", "nope", "{}", "{}"},
       "malformed JSON in parent_header"},
      {{"<IDS|MSG>", "", R"({"msg_id":"a","msg_type":"b"})", "{}", "3", "{}"},
       "metadata is not a JSON object"},
  };
  for (auto& c : cases) {
    Message m;
    Status st = Decode(frames(c.parts), signer.get(), {}, m);
    EXPECT_EQ(st.code(), StatusCode::kProtocolError);
    EXPECT_EQ(st.message(), c.why);
  }
}

TEST(ParseJsonObject, RefusesDeepNestingButNotBracketsInStrings) {
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  Json out;
  Status st = ParseJsonObject(R"({"a": )" + deep + "}", "content", out);
  EXPECT_EQ(st.code(), StatusCode::kProtocolError);
  EXPECT_NE(st.message().find("nested more than"), std::string::npos);
  std::string ok = R"({"s": ")" + std::string(1000, '[') + R"(\"{", "n": [[1]]})";
  EXPECT_TRUE(ParseJsonObject(ok, "content", out).ok());
  EXPECT_EQ(out["n"][0][0], 1);
}

TEST(Decode, OversizedMessagesAreRefused) {
  auto signer = std::move(Signer::Create("k").value());
  Json h = MakeHeader("apply_request", "s", "u");
  Frames buffers;
  buffers.emplace_back(std::string(2000, 'x').data(), 2000);
  Frames f =
      Encode({}, h, Json::object(), Json::object(), Json::object(), *signer, std::move(buffers));
  Message m;
  DecodeOptions opts;
  opts.max_bytes = 1000;
  Status st = Decode(std::move(f), signer.get(), opts, m);
  EXPECT_EQ(st.code(), StatusCode::kProtocolError);
  EXPECT_NE(st.message().find("exceeds the limit"), std::string::npos);
}

TEST(Ids, SessionIdsAndMsgIds) {
  std::string s = NewSessionId();
  ASSERT_EQ(s.size(), 33u);
  EXPECT_EQ(s[8], '-');
  EXPECT_NE(s, NewSessionId());
  std::string a = NewMsgId(s), b = NewMsgId(s);
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsSafeMsgId(a));
  EXPECT_FALSE(IsSafeMsgId("a b"));
  EXPECT_FALSE(IsSafeMsgId(""));
}

}  // namespace
}  // namespace shoal::wire
