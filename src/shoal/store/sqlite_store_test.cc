// SqliteStore-specific behaviour: persistence, batching, layout and failures. The shared
// contract is in record_store_contract_test.cc.
#include "shoal/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <string>

#include "shoal/store/store_test_util.h"

namespace shoal::store {
namespace {

using test_util::Completed;
using test_util::Submitted;
using test_util::TempDbPath;

// Rows committed to `table`, as seen by a separate connection (uncommitted writes of the
// store's own connection are invisible to it).
int64_t CommittedRows(const std::string& path, const std::string& table = "ipython-tasks") {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string sql = "SELECT COUNT(*) FROM \"" + table + "\"";
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path, SqliteStoreOptions options = {},
                                       const std::string& table = "ipython-tasks") {
  auto store = SqliteStore::Open(path, table, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

TEST(SqliteStoreTest, RecordsSurviveCloseAndReopen) {
  TempDbPath db;
  const std::string big = test_util::RandomBytes(1 << 20, 7);
  {
    auto store = OpenOrDie(db.path());
    ASSERT_NE(store, nullptr);
    Record r = Submitted("m1", 1);
    r.buffers = {Blob::Copy(big), Blob::Copy("")};
    ASSERT_TRUE(store->Add("m1", std::move(r)).ok());
    ASSERT_TRUE(store->Update("m1", Completed(2)).ok());
    ASSERT_TRUE(store->AppendText("m1", "stdout", "out").ok());
    ASSERT_TRUE(store->Add("m0", Submitted("m0", 0)).ok());
    ASSERT_TRUE(store->Add("undated", Record{{{"label", 3}}, {}, {}}).ok());
    // No Flush: a clean destruction must commit.
  }
  auto store = OpenOrDie(db.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Size(), 3u);
  auto got = store->Get("m1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->fields["stdout"], "out");
  EXPECT_EQ(got->fields["completed"], test_util::Date(2));
  EXPECT_EQ(got->fields["result_content"], (Json{{"status", "ok"}}));
  ASSERT_EQ(got->buffers.size(), 2u);
  EXPECT_TRUE(got->buffers[0].view() == big);
  EXPECT_EQ(got->buffers[1].size(), 0u);
  ASSERT_EQ(got->result_buffers.size(), 1u);
  EXPECT_EQ(got->result_buffers[0].view(), "result-bytes");
  auto undated = store->Get("undated");
  ASSERT_TRUE(undated.ok());
  EXPECT_EQ(undated->fields["label"], 3);
  auto history = store->History();
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(*history, (std::vector<std::string>{"m0", "m1"}));
  // Still writable after reopening.
  EXPECT_EQ(store->Add("m1", Submitted("m1", 5)).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(store->Add("m2", Submitted("m2", 5)).ok());
}

TEST(SqliteStoreTest, BatchesWritesUntilFlush) {
  TempDbPath db;
  auto store = OpenOrDie(db.path(), {.commit_every = 1'000'000});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    std::string id = "m" + std::to_string(i);
    ASSERT_TRUE(store->Add(id, Submitted(id, i)).ok());
  }
  EXPECT_EQ(store->Size(), 5u);
  EXPECT_EQ(CommittedRows(db.path()), 0);
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(CommittedRows(db.path()), 5);
  ASSERT_TRUE(store->Flush().ok());  // nothing pending: still fine
}

TEST(SqliteStoreTest, CommitsEveryNWrites) {
  TempDbPath db;
  auto store = OpenOrDie(db.path(), {.commit_every = 3});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Add("a", Submitted("a", 1)).ok());
  ASSERT_TRUE(store->Add("b", Submitted("b", 2)).ok());
  EXPECT_EQ(CommittedRows(db.path()), 0);
  ASSERT_TRUE(store->Update("a", Completed(3)).ok());  // third write
  EXPECT_EQ(CommittedRows(db.path()), 2);
}

TEST(SqliteStoreTest, CommitsWhenTheBatchIsOld) {
  TempDbPath db;
  FakeClock clock;
  auto store = OpenOrDie(
      db.path(), {.commit_every = 1000, .commit_interval = 2 * kMicrosPerSecond, .clock = &clock});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Add("a", Submitted("a", 1)).ok());
  clock.AdvanceMillis(1999);
  ASSERT_TRUE(store->Add("b", Submitted("b", 2)).ok());
  EXPECT_EQ(CommittedRows(db.path()), 0);
  clock.AdvanceMillis(1);
  ASSERT_TRUE(store->Add("c", Submitted("c", 3)).ok());
  EXPECT_EQ(CommittedRows(db.path()), 3);
}

TEST(SqliteStoreTest, UnopenablePathIsIOError) {
  auto missing_dir = SqliteStore::Open("/nonexistent-shoal-dir/sub/tasks.db");
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), StatusCode::kIOError);
  EXPECT_NE(missing_dir.status().message().find("/nonexistent-shoal-dir/sub/tasks.db"),
            std::string::npos)
      << missing_dir.status().message();
  EXPECT_NE(missing_dir.status().message().find("unable to open"), std::string::npos)
      << missing_dir.status().message();

  // A directory where the file should be.
  auto dir = SqliteStore::Open(::testing::TempDir());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kIOError) << dir.status().ToString();
}

TEST(SqliteStoreTest, NotADatabaseIsIOError) {
  TempDbPath db;
  FILE* f = std::fopen(db.path().c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not an SQLite database, just some text that is long enough......", f);
  std::fclose(f);
  auto store = SqliteStore::Open(db.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kIOError);
  EXPECT_NE(store.status().message().find("not a database"), std::string::npos)
      << store.status().message();
}

TEST(SqliteStoreTest, FullDiskIsIOErrorAndTheStoreStaysUsable) {
  TempDbPath db;
  // 64 pages of 4 KiB: room for the schema and small records, not for a 1 MiB buffer.
  auto store = OpenOrDie(db.path(), {.commit_every = 1, .max_page_count = 64});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Add("small", Submitted("small", 1)).ok());

  Record huge = Submitted("huge", 2, test_util::RandomBytes(1 << 20));
  Status st = store->Add("huge", std::move(huge));
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("database or disk is full"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(db.path()), std::string::npos) << st.message();
  EXPECT_EQ(store->Get("huge").status().code(), StatusCode::kNotFound);

  RecordUpdate grow;
  grow.result_buffers = std::vector<Blob>{Blob::Copy(test_util::RandomBytes(1 << 20))};
  EXPECT_EQ(store->Update("small", std::move(grow)).code(), StatusCode::kIOError);

  auto small = store->Get("small");
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->result_buffers.empty());
  EXPECT_TRUE(store->Add("small-2", Submitted("small-2", 3)).ok());
  EXPECT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->Size(), 2u);
  EXPECT_EQ(CommittedRows(db.path()), 2);
}

TEST(SqliteStoreTest, FullDiskKeepsTheEarlierWritesOfTheBatch) {
  TempDbPath db;
  auto store = OpenOrDie(db.path(), {.commit_every = 1000, .max_page_count = 64});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Add("a", Submitted("a", 1)).ok());
  ASSERT_TRUE(store->Add("b", Submitted("b", 2)).ok());
  ASSERT_TRUE(store->AppendText("a", "stdout", "kept").ok());
  ASSERT_TRUE(store->Drop("b").ok());

  // SQLite answers this with a rollback of the whole transaction; the store re-applies it.
  Status st = store->Add("huge", Submitted("huge", 3, test_util::RandomBytes(1 << 20)));
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_EQ(store->Size(), 1u);
  auto a = store->Get("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->fields["stdout"], "kept");
  EXPECT_EQ(store->Get("b").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(CommittedRows(db.path()), 1);
  store.reset();
  store = OpenOrDie(db.path());
  ASSERT_NE(store, nullptr);
  auto reread = store->Get("a");
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->fields["stdout"], "kept");
}

TEST(SqliteStoreTest, ForeignTableLayoutIsLeftAlone) {
  TempDbPath db;
  // A table as Python's SQLiteDB makes it (fewer columns, pickled buffers).
  ExecRaw(db.path(),
          "CREATE TABLE \"ipython-tasks\" (msg_id text PRIMARY KEY, header dict text, "
          "buffers bufs blob); INSERT INTO \"ipython-tasks\" VALUES ('py', '{}', NULL);");
  auto store = OpenOrDie(db.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->table(), "ipython-tasks_1");
  EXPECT_EQ(store->Size(), 0u);
  ASSERT_TRUE(store->Add("m1", Submitted("m1", 1)).ok());
  store.reset();

  EXPECT_EQ(CommittedRows(db.path(), "ipython-tasks"), 1);
  EXPECT_EQ(CommittedRows(db.path(), "ipython-tasks_1"), 1);
  store = OpenOrDie(db.path());  // finds its own table again
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->table(), "ipython-tasks_1");
  EXPECT_TRUE(store->Get("m1").ok());
}

TEST(SqliteStoreTest, TablesAreIndependent) {
  TempDbPath db;
  auto a = OpenOrDie(db.path(), {}, "session-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->Add("m1", Submitted("m1", 1)).ok());
  ASSERT_TRUE(a->Flush().ok());
  auto b = OpenOrDie(db.path(), {}, "session \"b\"");  // quoting survives odd names
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->Size(), 0u);
  EXPECT_EQ(b->Get("m1").status().code(), StatusCode::kNotFound);
}

TEST(SqliteStoreTest, CorruptStoredValuesAreIOErrors) {
  TempDbPath db;
  {
    auto store = OpenOrDie(db.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Add("bufs", Submitted("bufs", 1)).ok());
    ASSERT_TRUE(store->Add("json", Submitted("json", 2)).ok());
  }
  ExecRaw(db.path(),
          "UPDATE \"ipython-tasks\" SET buffers = x'80049505' WHERE msg_id = 'bufs';"
          "UPDATE \"ipython-tasks\" SET header = '{not json' WHERE msg_id = 'json';");
  auto store = OpenOrDie(db.path());
  ASSERT_NE(store, nullptr);
  Status bufs = store->Get("bufs").status();
  EXPECT_EQ(bufs.code(), StatusCode::kIOError);
  EXPECT_NE(bufs.message().find("buffer"), std::string::npos) << bufs.message();
  Status json = store->Get("json").status();
  EXPECT_EQ(json.code(), StatusCode::kIOError);
  EXPECT_NE(json.message().find("header"), std::string::npos) << json.message();
  EXPECT_EQ(store->Find(Json::object(), std::nullopt).status().code(), StatusCode::kIOError);
}

}  // namespace
}  // namespace shoal::store
