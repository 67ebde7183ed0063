#include "shoal/client/result_book.h"

#include <gtest/gtest.h>

#include "shoal/wire/json_get.h"

namespace shoal::client {
namespace {

using std::chrono::milliseconds;
using wire::Json;

const std::string kSession = "aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb";
const std::string kEngine = "eeeeeeee-000000000000000000000001";

class ResultBookTest : public ::testing::Test {
 protected:
  ResultBookTest() : book_(kSession), signer_(std::move(wire::Signer::Create("")).value()) {}

  // Adds a request and returns its handle.
  Submitted Add(const std::string& id, Channel ch = Channel::kMux, bool outputs = true,
                std::string engine = kEngine, bool coalescing = false) {
    Track t;
    t.msg_id = id;
    t.channel = ch;
    t.request_type = "apply_request";
    t.request_header = Json{{"msg_id", id}, {"session", kSession}}.dump();
    t.engine_uuid = std::move(engine);
    t.engine_id = 3;
    t.coalescing = coalescing;
    if (outputs) t.outputs = std::make_shared<Outputs>();
    Submitted s{id, 3, t.promise.future(), t.outputs};
    book_.Add(std::move(t));
    return s;
  }

  wire::Message Msg(const std::string& type, const std::string& parent_id, Json content,
                    Json metadata = Json::object(), std::vector<std::string> idents = {},
                    std::string session = kSession, Frames buffers = {}) {
    Json header = {{"msg_id", "r" + std::to_string(++n_)},
                   {"msg_type", type},
                   {"session", "engine"},
                   {"version", "5.3"}};
    Json parent = {{"msg_id", parent_id}, {"session", session}};
    Frames frames =
        wire::Encode(idents, header, parent, metadata, content, *signer_, std::move(buffers));
    wire::Message m;
    EXPECT_TRUE(wire::Decode(std::move(frames), nullptr, {.parse_content = true}, m).ok());
    return m;
  }

  ResultBook book_;
  std::unique_ptr<wire::Signer> signer_;
  int n_ = 0;
};

TEST_F(ResultBookTest, ReplyThenIdleCompletesAndForgets) {
  Submitted s = Add("m1");
  Frames bufs;
  bufs.emplace_back("abc", 3);
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "m1", {{"status", "ok"}}, {{"engine", kEngine}},
                                {kEngine}, kSession, std::move(bufs))));
  ASSERT_TRUE(s.reply.ready());
  ReplyPtr r = *s.reply.Get(milliseconds(0));
  EXPECT_EQ(r->msg_id(), "m1");
  EXPECT_EQ(r->engine_uuid(), kEngine);
  EXPECT_EQ(r->msg_type(), "apply_reply");
  EXPECT_TRUE(r->error().ok());
  ASSERT_EQ(r->num_buffers(), 1u);
  EXPECT_EQ(wire::View(r->buffer(0)), "abc");
  EXPECT_EQ(book_.outstanding(), 1u);  // waiting for idle
  EXPECT_FALSE(s.outputs->idle());
  EXPECT_TRUE(book_.OnIopub(Msg("stream", "m1", {{"name", "stdout"}, {"text", "hi\n"}})));
  EXPECT_TRUE(book_.OnIopub(Msg("stream", "m1", {{"name", "stderr"}, {"text", "oops"}})));
  EXPECT_TRUE(book_.OnIopub(Msg("status", "m1", {{"execution_state", "idle"}})));
  EXPECT_TRUE(s.outputs->idle());
  EXPECT_EQ(s.outputs->stdout_text(), "hi\n");
  EXPECT_EQ(s.outputs->stderr_text(), "oops");
  EXPECT_EQ(book_.outstanding(), 0u);
  EXPECT_TRUE(s.Wait(milliseconds(0)).ok());
}

TEST_F(ResultBookTest, IdleBeforeReplyAndOutputsKinds) {
  Submitted s = Add("m1");
  EXPECT_TRUE(book_.OnIopub(Msg("execute_input", "m1", {{"code", "1+1"}})));
  EXPECT_TRUE(book_.OnIopub(Msg("execute_result", "m1", {{"data", {{"text/plain", "2"}}}})));
  EXPECT_TRUE(book_.OnIopub(Msg("display_data", "m1", {{"data", {{"text/plain", "d"}}}})));
  Frames bufs;
  bufs.emplace_back("xyz", 3);
  EXPECT_TRUE(book_.OnIopub(
      Msg("data_message", "m1", {{"keys", {"a"}}}, Json::object(), {}, kSession, std::move(bufs))));
  EXPECT_TRUE(book_.OnIopub(Msg("error", "m1", {{"ename", "E"}, {"evalue", "v"}})));
  EXPECT_TRUE(book_.OnIopub(Msg("status", "m1", {{"execution_state", "idle"}})));
  EXPECT_EQ(book_.outstanding(), 1u);
  EXPECT_FALSE(s.Wait(milliseconds(0)).ok());
  EXPECT_TRUE(book_.OnReply(Msg("execute_reply", "m1", {{"status", "ok"}})));
  EXPECT_EQ(book_.outstanding(), 0u);
  EXPECT_EQ(s.outputs->execute_input(), "1+1");
  EXPECT_EQ(s.outputs->execute_result()["data"]["text/plain"], "2");
  EXPECT_EQ(s.outputs->display_data().size(), 1u);
  ASSERT_EQ(s.outputs->data().size(), 1u);
  EXPECT_EQ(wire::View(s.outputs->data()[0]->buffers[0]), "xyz");
  EXPECT_EQ(s.outputs->error()["ename"], "E");
}

TEST_F(ResultBookTest, ForeignAndUnknownMessagesIgnored) {
  Submitted s = Add("m1");
  EXPECT_FALSE(book_.OnIopub(Msg("stream", "m1", {{"name", "stdout"}, {"text", "x"}},
                                 Json::object(), {}, "other-session")));
  EXPECT_FALSE(book_.OnIopub(Msg("stream", "zz", {{"name", "stdout"}, {"text", "x"}})));
  EXPECT_FALSE(book_.OnReply(Msg("apply_reply", "zz", {{"status", "ok"}})));
  EXPECT_EQ(s.outputs->stdout_text(), "");
  EXPECT_FALSE(s.reply.ready());
}

TEST_F(ResultBookTest, RemoteErrorAndControllerErrorCompleteOutputs) {
  Submitted engine_err = Add("m1");
  Submitted ctl_err = Add("m2", Channel::kTask, true, "");
  Json err = {{"status", "error"},
              {"ename", "ZeroDivisionError"},
              {"evalue", "division by zero"},
              {"traceback", Json::array()}};
  Json with_engine = err;
  with_engine["engine_info"] = {{"engine_id", 3}};
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "m1", with_engine)));
  Status st = (*engine_err.reply.Get(milliseconds(0)))->error();
  EXPECT_EQ(st.code(), StatusCode::kRemoteError);
  EXPECT_EQ(st.message(), "ZeroDivisionError: division by zero");
  EXPECT_FALSE(engine_err.outputs->idle());  // the engine still sends idle
  Json timeout = {{"status", "error"},
                  {"ename", "TaskTimeout"},
                  {"evalue", ""},
                  {"engine_info", Json::object()}};
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "m2", timeout)));
  EXPECT_TRUE(ctl_err.outputs->idle());  // nobody will
  EXPECT_TRUE(ctl_err.Wait(milliseconds(0)).ok());
}

TEST_F(ResultBookTest, AbortedReply) {
  Submitted s = Add("m1");
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "m1", {{"status", "aborted"}})));
  EXPECT_EQ((*s.reply.Get(milliseconds(0)))->error().code(), StatusCode::kCancelled);
  EXPECT_TRUE(s.outputs->idle());
  EXPECT_EQ(book_.outstanding(), 0u);
}

TEST_F(ResultBookTest, EngineGoneFailsItsRequestsWithReason) {
  Submitted a = Add("m1");
  Submitted b = Add("m2", Channel::kControl, false);
  Submitted other = Add("m3", Channel::kMux, true, "another-engine");
  Submitted done = Add("m4");
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "m4", {{"status", "ok"}})));
  EXPECT_EQ(book_.OnEngineGone(3, kEngine, "killed by signal 9 (SIGKILL)"), 2u);
  ReplyPtr r = *a.reply.Get(milliseconds(0));
  EXPECT_TRUE(r->synthesized());
  EXPECT_EQ(r->msg_type(), "apply_reply");
  EXPECT_EQ(r->content()["ename"], "EngineError");
  EXPECT_EQ(r->error().message(),
            "EngineError: Engine 3 died while running task 'm1' (killed by signal 9 (SIGKILL))");
  EXPECT_EQ(wire::GetString(Json::parse(r->parent_json()), "msg_id"), "m1");
  EXPECT_TRUE(a.outputs->idle());
  EXPECT_TRUE(b.reply.ready());
  EXPECT_FALSE(other.reply.ready());
  EXPECT_TRUE(done.reply.ready());
  EXPECT_TRUE(done.outputs->idle());  // replied, and no idle will come from a dead engine
  EXPECT_EQ(book_.OnEngineGone(3, kEngine, ""), 0u);
  EXPECT_EQ(book_.outstanding(), 1u);  // m3, on another engine
}

TEST_F(ResultBookTest, ControllerEngineErrorCompletesOutputs) {
  // shoal-controller answers a dead engine's requests itself, engine_info filled in.
  Submitted s = Add("m1");
  Json err = {{"status", "error"},
              {"ename", "EngineError"},
              {"evalue", "killed"},
              {"engine_info", {{"engine_id", 3}, {"engine_uuid", kEngine}}}};
  EXPECT_TRUE(book_.OnReply(Msg("execute_reply", "m1", err)));
  EXPECT_TRUE(s.outputs->idle());
  EXPECT_EQ(book_.outstanding(), 0u);
  EXPECT_EQ(book_.OnEngineGone(3, kEngine, "killed"), 0u);  // nothing left to fail
}

TEST_F(ResultBookTest, EngineGoneWithoutReason) {
  Submitted a = Add("m1");
  book_.OnEngineGone(3, kEngine, "");
  EXPECT_EQ((*a.reply.Get(milliseconds(0)))->error().message(),
            "EngineError: Engine 3 died while running task 'm1'");
}

TEST_F(ResultBookTest, CoalescedBroadcastMatchedByOriginalId) {
  Submitted s = Add("b1", Channel::kBroadcast, false, "", /*coalescing=*/true);
  Json md = {{"is_broadcast", true}, {"is_coalescing", true}, {"original_msg_id", "b1"}};
  EXPECT_TRUE(book_.OnReply(Msg("apply_reply", "b1_" + kEngine, {{"status", "ok"}}, md)));
  EXPECT_EQ((*s.reply.Get(milliseconds(0)))->msg_id(), "b1");
}

TEST_F(ResultBookTest, FailAllCancelsEverything) {
  Submitted a = Add("m1");
  Submitted q = Add("q1", Channel::kQuery, false, "");
  book_.FailAll(Status::Cancelled("closed"));
  EXPECT_EQ(a.reply.Get(milliseconds(0)).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(q.reply.Get(milliseconds(0)).status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(a.outputs->idle());
  EXPECT_EQ(book_.outstanding(), 0u);
  EXPECT_EQ(a.Wait(milliseconds(0)).code(), StatusCode::kCancelled);
}

TEST(ReplyTypeTest, Names) {
  EXPECT_EQ(ReplyTypeFor("apply_request"), "apply_reply");
  EXPECT_EQ(ReplyTypeFor("execute_request"), "execute_reply");
  EXPECT_EQ(ReplyTypeFor("weird"), "weird_reply");
}

}  // namespace
}  // namespace shoal::client
