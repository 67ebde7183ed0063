// The RecordStore contract, run against every storing backend.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "shoal/store/memory_store.h"
#include "shoal/store/record_store.h"
#include "shoal/store/sqlite_store.h"
#include "shoal/store/store_test_util.h"

namespace shoal::store {
namespace {

using test_util::Completed;
using test_util::Date;
using test_util::Submitted;

template <typename T>
struct Backend;

template <>
struct Backend<MemoryStore> {
  static std::unique_ptr<RecordStore> Make(const std::string& /*path*/) {
    return std::make_unique<MemoryStore>();
  }
};

template <>
struct Backend<SqliteStore> {
  static std::unique_ptr<RecordStore> Make(const std::string& path) {
    auto store = SqliteStore::Open(path);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
};

template <typename T>
class RecordStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Backend<T>::Make(db_.path());
    ASSERT_NE(store_, nullptr);
  }

  RecordStore& store() { return *store_; }

  void Add(const std::string& msg_id, Record record) {
    Status st = store_->Add(msg_id, std::move(record));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  void Update(const std::string& msg_id, RecordUpdate update) {
    Status st = store_->Update(msg_id, std::move(update));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // msg_ids found by `query`, in result order.
  std::vector<std::string> FindIds(const Json& query) {
    auto found = store_->Find(query, std::nullopt);
    EXPECT_TRUE(found.ok()) << query.dump() << ": " << found.status().ToString();
    std::vector<std::string> ids;
    if (found.ok())
      for (const Record& r : *found) ids.push_back(r.fields.at("msg_id").get<std::string>());
    return ids;
  }

  // Six records covering the cases the operators distinguish:
  //   a, b, d finished; c, e pending; f created from early output, with no "submitted".
  void AddCorpus() {
    Add("a", Submitted("a", 10));
    Update("a", Completed(12, "engine-a"));
    Update("a", RecordUpdate{{{"label", "alpha"}}, std::nullopt, std::nullopt});
    Add("b", Submitted("b", 20));
    Update("b", Completed(21, "engine-b"));
    Update("b", RecordUpdate{{{"label", "beta"}}, std::nullopt, std::nullopt});
    Add("c", Submitted("c", 30));
    Update("c", RecordUpdate{{{"label", 7}}, std::nullopt, std::nullopt});
    Add("d", Submitted("d", 40));
    Update("d", Completed(45, "engine-a"));
    Update("d", RecordUpdate{{{"label", "alpha-2"}}, std::nullopt, std::nullopt});
    Record e = Submitted("e", 50);
    e.fields["queue"] = "mux";
    e.fields["engine_uuid"] = "engine-b";
    e.fields["label"] = 8;
    Add("e", std::move(e));
    Add("f", Record{{{"stdout", "early"}}, {}, {}});
  }

  test_util::TempDbPath db_;  // outlives store_, which is declared (so destroyed) after it
  std::unique_ptr<RecordStore> store_;
};

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, MemoryStore>) return "Memory";
    return "Sqlite";
  }
};

using Backends = ::testing::Types<MemoryStore, SqliteStore>;
TYPED_TEST_SUITE(RecordStoreContractTest, Backends, BackendNames);

TYPED_TEST(RecordStoreContractTest, AddThenGetReturnsEveryKey) {
  Record in = Submitted("m1", 1);
  const Json fields = in.fields;
  this->Add("m1", std::move(in));
  EXPECT_EQ(this->store().Size(), 1u);

  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->fields.size(), kRecordKeys.size());
  for (std::string_view key : kRecordKeys) {
    auto expected = fields.find(key);
    EXPECT_EQ(got->fields.at(std::string(key)), expected == fields.end() ? Json() : *expected)
        << key;
  }
  ASSERT_EQ(got->buffers.size(), 1u);
  EXPECT_EQ(got->buffers[0].view(), "request-bytes");
  EXPECT_TRUE(got->result_buffers.empty());
}

TYPED_TEST(RecordStoreContractTest, AddWritesMsgIdIntoFields) {
  this->Add("m1", Record{{{"queue", "mux"}}, {}, {}});
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->fields["msg_id"], "m1");
}

TYPED_TEST(RecordStoreContractTest, DuplicateAddIsAlreadyExistsAndKeepsTheOriginal) {
  this->Add("m1", Submitted("m1", 1, "first"));
  Status st = this->store().Add("m1", Submitted("m1", 2, "second"));
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->buffers.at(0).view(), "first");
  EXPECT_EQ(this->store().Size(), 1u);
}

TYPED_TEST(RecordStoreContractTest, MissingRecordIsNotFound) {
  this->Add("m1", Submitted("m1", 1));
  EXPECT_EQ(this->store().Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Update("nope", Completed(2)).code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Update("nope", RecordUpdate{}).code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().AppendText("nope", "stdout", "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Drop("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Size(), 1u);
}

TYPED_TEST(RecordStoreContractTest, UpdateMergesFieldsAndReplacesBuffers) {
  this->Add("m1", Submitted("m1", 1));
  this->Update("m1", Completed(3, "engine-z", "reply"));
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->fields["completed"], Date(3));
  EXPECT_EQ(got->fields["engine_uuid"], "engine-z");
  EXPECT_EQ(got->fields["result_content"], (Json{{"status", "ok"}}));
  EXPECT_EQ(got->fields["submitted"], Date(1));  // untouched keys stay
  EXPECT_EQ(got->fields["client_uuid"], "client-1");
  EXPECT_EQ(got->buffers.at(0).view(), "request-bytes");  // not named: kept
  ASSERT_EQ(got->result_buffers.size(), 1u);
  EXPECT_EQ(got->result_buffers[0].view(), "reply");

  RecordUpdate clear;
  clear.fields = {{"completed", nullptr}};
  clear.buffers = std::vector<Blob>{};
  this->Update("m1", std::move(clear));
  got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->fields["completed"].is_null());
  EXPECT_TRUE(got->buffers.empty());
  EXPECT_EQ(got->result_buffers.size(), 1u);
}

TYPED_TEST(RecordStoreContractTest, AppendTextAccumulatesFromNull) {
  this->Add("m1", Record{{{"stdout", nullptr}}, {}, {}});
  ASSERT_TRUE(this->store().AppendText("m1", "stdout", "hello ").ok());
  ASSERT_TRUE(this->store().AppendText("m1", "stdout", "w\xc3\xb6rld\n").ok());
  ASSERT_TRUE(this->store().AppendText("m1", "stderr", "oops").ok());  // absent key
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->fields["stdout"], "hello w\xc3\xb6rld\n");
  EXPECT_EQ(got->fields["stderr"], "oops");
}

TYPED_TEST(RecordStoreContractTest, AppendTextRejectsNonTextTargets) {
  this->Add("m1", Record{{{"label", 5}}, {}, {}});
  EXPECT_EQ(this->store().AppendText("m1", "header", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().AppendText("m1", "msg_id", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().AppendText("m1", "nonsense", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().AppendText("m1", "label", "x").code(), StatusCode::kInvalidArgument);
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->fields["label"], 5);
}

TYPED_TEST(RecordStoreContractTest, BadFieldsAreInvalidAndChangeNothing) {
  EXPECT_EQ(this->store().Add("m1", Record{{{"display_data", 1}}, {}, {}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Add("m1", Record{{{"submitted", "yesterday"}}, {}, {}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Add("m1", Record{{{"msg_id", "other"}}, {}, {}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Add("m1", Record{Json::array(), {}, {}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Size(), 0u);

  this->Add("m1", Submitted("m1", 1));
  RecordUpdate bad;
  bad.fields = {{"completed", Date(2)}, {"started", 12}};
  bad.result_buffers = std::vector<Blob>{Blob::Copy("x")};
  EXPECT_EQ(this->store().Update("m1", std::move(bad)).code(), StatusCode::kInvalidArgument);
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->fields["completed"].is_null());
  EXPECT_TRUE(got->result_buffers.empty());
}

TYPED_TEST(RecordStoreContractTest, JsonValuesKeepTheirTypes) {
  Record r;
  r.fields = {
      {"content",
       {{"code", "x = 1"},
        {"ratio", 0.1},
        {"big", 9007199254740993LL},
        {"nested", {1, "é", nullptr, true}}}},
      {"label", 5},
      {"execute_input", "print('5')"},
      {"error", {{"ename", "ZeroDivisionError"}, {"traceback", {"line 1", "line 2"}}}},
      {"resubmitted", "5"},
      {"execute_result", Json::array()},
      {"stdout", ""},
  };
  const Json expected = r.fields;
  this->Add("m1", std::move(r));
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  for (const auto& [key, value] : expected.items()) EXPECT_EQ(got->fields[key], value) << key;
  EXPECT_TRUE(got->fields["label"].is_number_integer());
  EXPECT_TRUE(got->fields["resubmitted"].is_string());
}

TYPED_TEST(RecordStoreContractTest, BuffersRoundTripByteExact) {
  const std::string big = test_util::RandomBytes(1 << 20);
  const std::string nuls("\0\x01\0\xff\0", 5);
  Record r = Submitted("m1", 1);
  r.buffers = {Blob::Copy(big), Blob::Copy(""), Blob::Copy(nuls)};
  this->Add("m1", std::move(r));
  RecordUpdate u = Completed(2);
  u.result_buffers = std::vector<Blob>{Blob::Copy(""), Blob::Copy(big.substr(7, 300000))};
  this->Update("m1", std::move(u));

  auto check = [&](const Record& got) {
    ASSERT_EQ(got.buffers.size(), 3u);
    EXPECT_TRUE(got.buffers[0].view() == big);
    EXPECT_EQ(got.buffers[1].size(), 0u);
    EXPECT_EQ(got.buffers[2].view(), nuls);
    ASSERT_EQ(got.result_buffers.size(), 2u);
    EXPECT_EQ(got.result_buffers[0].size(), 0u);
    EXPECT_TRUE(got.result_buffers[1].view() == big.substr(7, 300000));
  };
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  check(*got);
  auto found = this->store().Find(Json::object(), std::nullopt);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  check((*found)[0]);
}

TYPED_TEST(RecordStoreContractTest, FindWithEveryOperator) {
  this->AddCorpus();
  struct Case {
    const char* query;
    std::vector<std::string> ids;
  };
  const std::vector<Case> cases = {
      {R"({})", {"a", "b", "c", "d", "e", "f"}},
      {R"({"engine_uuid": "engine-a"})", {"a", "d"}},
      {R"({"completed": null})", {"c", "e", "f"}},
      {R"({"completed": {"$ne": null}})", {"a", "b", "d"}},
      {R"({"queue": {"$eq": "mux"}})", {"e"}},
      {R"({"label": {"$gt": 7}})", {"e"}},
      {R"({"label": {"$gte": 7}})", {"c", "e"}},
      {R"({"label": {"$lt": 8}})", {"c"}},
      {R"({"label": {"$lte": 8}})", {"c", "e"}},
      {R"({"label": {"$gt": "alpha"}})", {"b", "d"}},
      {R"({"queue": {"$in": ["mux", "other"]}})", {"e"}},
      {R"({"engine_uuid": {"$nin": ["engine-a", null]}})", {"b", "e"}},
      {R"({"label": {"$all": ["beta"]}})", {"b"}},
      {R"({"label": {"$mod": [2, 1]}})", {"c"}},
      {R"({"label": {"$exists": true}})", {"a", "b", "c", "d", "e"}},
      {R"({"submitted": {"$exists": false}})", {"f"}},
      {R"({"label": {"$glob": "alpha*"}})", {"a", "d"}},
      {R"({"stdout": {"$glob": "ear?y"}})", {"f"}},
      {R"({"queue": "task", "completed": {"$exists": false}})", {"c"}},
      {R"({"msg_id": {"$in": ["d", "a", "zz", "a"]}})", {"a", "d"}},
      {R"({"msg_id": "c", "label": 7})", {"c"}},
      {R"({"msg_id": "c", "label": 8})", {}},
  };
  for (const Case& c : cases) EXPECT_EQ(this->FindIds(Json::parse(c.query)), c.ids) << c.query;
}

TYPED_TEST(RecordStoreContractTest, FindDateRangesCompareInstants) {
  this->AddCorpus();
  // Bounds in another offset and with fractions: text order would get these wrong.
  EXPECT_EQ(
      this->FindIds({{"submitted",
                      {{"$gte", "2026-01-01T01:00:15+01:00"}, {"$lt", "2026-01-01T00:00:45Z"}}}}),
      (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(this->FindIds({{"submitted", {{"$gt", Date(20)}, {"$lte", Date(40)}}}}),
            (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(this->FindIds({{"submitted", {{"$lt", "2026-01-01T00:00:20.000001Z"}}}}),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(this->FindIds({{"submitted", "2025-12-31T19:00:30-05:00"}}),
            (std::vector<std::string>{"c"}));
  EXPECT_EQ(this->FindIds({{"completed", {{"$gt", Date(20)}}}}),
            (std::vector<std::string>{"b", "d"}));
}

TYPED_TEST(RecordStoreContractTest, FindOrdersBySubmittedThenInsertion) {
  this->Add("late", Submitted("late", 30));
  this->Add("undated-1", Record{{{"stdout", "x"}}, {}, {}});
  this->Add("early", Submitted("early", 10));
  this->Add("undated-2", Record{});
  this->Add("tie-1", Submitted("tie-1", 20.5));
  this->Add("tie-2", Submitted("tie-2", 20.5));
  this->Add("mid", Submitted("mid", 20));
  EXPECT_EQ(this->FindIds(Json::object()),
            (std::vector<std::string>{"early", "mid", "tie-1", "tie-2", "late", "undated-1",
                                      "undated-2"}));
  auto history = this->store().History();
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(*history, (std::vector<std::string>{"early", "mid", "tie-1", "tie-2", "late"}));
}

TYPED_TEST(RecordStoreContractTest, LateSubmittedDateMovesTheRecord) {
  // Output can arrive before the request: the record starts undated and is dated later.
  this->Add("first-output", Record{{{"stdout", "early"}}, {}, {}});
  this->Add("other", Submitted("other", 20));
  this->Update("first-output", RecordUpdate{{{"submitted", Date(10)}}, std::nullopt, std::nullopt});
  EXPECT_EQ(this->FindIds(Json::object()), (std::vector<std::string>{"first-output", "other"}));
  auto history = this->store().History();
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(*history, (std::vector<std::string>{"first-output", "other"}));
}

TYPED_TEST(RecordStoreContractTest, FindProjectsKeys) {
  this->AddCorpus();
  auto found = this->store().Find({{"msg_id", {{"$ne", ""}}}},
                                  std::vector<std::string>{"submitted", "completed"});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 6u);
  for (const Record& r : *found) {
    std::set<std::string> keys;
    for (const auto& [k, v] : r.fields.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"msg_id", "submitted", "completed"}));
    EXPECT_TRUE(r.buffers.empty());
    EXPECT_TRUE(r.result_buffers.empty());
  }
  EXPECT_EQ((*found)[0].fields["completed"], Date(12));
  EXPECT_TRUE((*found)[2].fields["completed"].is_null());

  auto only_id = this->store().Find({{"msg_id", "a"}}, std::vector<std::string>{"msg_id"});
  ASSERT_TRUE(only_id.ok());
  ASSERT_EQ(only_id->size(), 1u);
  EXPECT_EQ((*only_id)[0].fields, (Json{{"msg_id", "a"}}));

  auto bufs = this->store().Find({{"msg_id", "a"}}, std::vector<std::string>{"buffers"});
  ASSERT_TRUE(bufs.ok());
  ASSERT_EQ(bufs->size(), 1u);
  EXPECT_EQ((*bufs)[0].fields, (Json{{"msg_id", "a"}}));
  ASSERT_EQ((*bufs)[0].buffers.size(), 1u);
  EXPECT_EQ((*bufs)[0].buffers[0].view(), "request-bytes");
  EXPECT_TRUE((*bufs)[0].result_buffers.empty());

  auto rbufs = this->store().Find({{"msg_id", "a"}},
                                  std::vector<std::string>{"result_buffers", "result_content"});
  ASSERT_TRUE(rbufs.ok());
  ASSERT_EQ(rbufs->size(), 1u);
  EXPECT_TRUE((*rbufs)[0].buffers.empty());
  ASSERT_EQ((*rbufs)[0].result_buffers.size(), 1u);
  EXPECT_EQ((*rbufs)[0].fields["result_content"], (Json{{"status", "ok"}}));
}

TYPED_TEST(RecordStoreContractTest, FindRejectsBadQueriesAndKeys) {
  this->AddCorpus();
  EXPECT_EQ(this->store().Find(Json::array(), std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Find({{"label", {{"$regex", "a.*"}}}}, std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Find({{"label", {{"$in", 3}}}}, std::nullopt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store()
                .Find(Json::object(), std::vector<std::string>{"submitted", "garbage"})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().DropMatching({{"label", {{"$bogus", 1}}}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(this->store().Size(), 6u);
}

TYPED_TEST(RecordStoreContractTest, ResultsAreCopies) {
  this->Add("m1", Submitted("m1", 1));
  auto got = this->store().Get("m1");
  ASSERT_TRUE(got.ok());
  got->fields["header"]["msg_id"] = "fubar";
  got->fields["stdout"] = "garbage";
  got->buffers.clear();
  auto found =
      this->store().Find({{"msg_id", "m1"}}, std::vector<std::string>{"header", "buffers"});
  ASSERT_TRUE(found.ok());
  (*found)[0].fields["header"]["msg_id"] = "fubar";

  auto again = this->store().Get("m1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fields["header"]["msg_id"], "m1");
  EXPECT_EQ(again->fields["stdout"], "");
  EXPECT_EQ(again->buffers.size(), 1u);
}

TYPED_TEST(RecordStoreContractTest, DropMatchingRemovesExactlyTheMatches) {
  this->AddCorpus();
  auto dropped = this->store().DropMatching({{"completed", {{"$ne", nullptr}}}});
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(*dropped, 3u);
  EXPECT_EQ(this->store().Size(), 3u);
  EXPECT_EQ(this->FindIds(Json::object()), (std::vector<std::string>{"c", "e", "f"}));
  EXPECT_EQ(this->store().Get("a").status().code(), StatusCode::kNotFound);

  auto none = this->store().DropMatching({{"msg_id", {{"$in", {"a", "b", "nope"}}}}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  auto by_id = this->store().DropMatching({{"msg_id", {{"$in", {"c", "e", "c"}}}}});
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(*by_id, 2u);
  EXPECT_EQ(this->FindIds(Json::object()), (std::vector<std::string>{"f"}));
}

TYPED_TEST(RecordStoreContractTest, DropRemovesOneRecord) {
  this->AddCorpus();
  ASSERT_TRUE(this->store().Drop("c").ok());
  EXPECT_EQ(this->store().Get("c").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Drop("c").code(), StatusCode::kNotFound);
  EXPECT_EQ(this->store().Size(), 5u);
  auto history = this->store().History();
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(*history, (std::vector<std::string>{"a", "b", "d", "e"}));
  // The id is free again.
  this->Add("c", Submitted("c", 1));
  EXPECT_EQ(this->FindIds(Json::object()).front(), "c");
}

TYPED_TEST(RecordStoreContractTest, ManyTasksThroughTheControllerPath) {
  // The controller's per-task sequence: Add, destination Update, result Update, output.
  for (int i = 0; i < 300; ++i) {
    const std::string id = "task-" + std::to_string(i);
    this->Add(id, Submitted(id, i));
    this->Update(id, RecordUpdate{{{"engine_uuid", "engine-a"}}, std::nullopt, std::nullopt});
    this->Update(id, Completed(i + 0.5));
    ASSERT_TRUE(this->store().AppendText(id, "stdout", std::to_string(i)).ok());
  }
  ASSERT_TRUE(this->store().Flush().ok());
  EXPECT_EQ(this->store().Size(), 300u);
  auto got = this->store().Get("task-123");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->fields["stdout"], "123");
  EXPECT_EQ(this->FindIds({{"submitted", {{"$gte", Date(100)}, {"$lt", Date(103)}}}}),
            (std::vector<std::string>{"task-100", "task-101", "task-102"}));
}

}  // namespace
}  // namespace shoal::store
