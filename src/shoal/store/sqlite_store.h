// SqliteStore: a persistent RecordStore in one SQLite table (IPython Parallel's SQLiteDB).
//
// Layout: one row per record, one column per key in upstream's column order (kRecordKeys with
// "buffers" after "content" and "result_buffers" after "result_content"); msg_id is the
// primary key. Dates are stored as the ISO text the caller gave, dict-valued keys as JSON
// text, other keys as TEXT when they hold a string (and as a JSON BLOB otherwise, so no value
// changes type on the way back), buffer lists as BLOBs in blob_codec.h's format. A table of
// the same name whose columns differ (e.g. one written by Python) is left alone and
// "<table>_1", "<table>_2", ... is used instead, as upstream does; table() tells which.
//
// Durability: writes are batched into one transaction, committed after `commit_every` writes
// or when a write comes `commit_interval` after the transaction began, on Flush(), and on
// destruction. So a clean shutdown loses nothing; a crash loses at most the open batch (the
// controller should call Flush() on a timer, e.g. every 2 s, as upstream commits). Until its
// commit, the batch's writes are also kept in a journal (Blobs shared, not copied; see
// Failure).
//
// Queries are evaluated by Query over decoded rows (correctness over speed; this is the
// non-default backend); msg_id lookups ({"msg_id": x} or {"$in": [...]}) use the primary key.
//
// Failure: every SQLite error is kIOError with SQLite's message (see sqlite_status.h): an
// unopenable or unwritable path at Open, a full disk on a write or commit. A failed write
// changes nothing. SQLite may answer a full disk by rolling back the whole open transaction;
// the store then re-applies the batch's earlier writes from its journal, so accepted writes
// are lost only if that replay fails too (the error then says how many).
// Ownership: owns its connection. Thread rule: not thread-safe (see RecordStore).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/store/record_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace shoal::store {

struct SqliteStoreOptions {
  size_t commit_every = 1000;                     // writes per batched transaction
  Micros commit_interval = 2 * kMicrosPerSecond;  // age at which a write commits the batch
  const Clock* clock = nullptr;                   // monotonic time source; SystemClock if null
  int64_t max_page_count = 0;  // >0 caps the file at this many pages (a quota; tests use it
                               // to fill the "disk")
};

class SqliteStore final : public RecordStore {
 public:
  // Opens (creating if needed) the database at `path` and the record table in it.
  // kIOError when the file cannot be opened, created or written.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                   const std::string& table = "ipython-tasks",
                                                   SqliteStoreOptions options = {});

  // Commits the open batch; a failure is reported on stderr (call Flush() first to see it).
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status Add(const std::string& msg_id, Record record) override;
  Status Update(const std::string& msg_id, RecordUpdate update) override;
  Status AppendText(const std::string& msg_id, std::string_view key,
                    std::string_view text) override;
  Result<Record> Get(const std::string& msg_id) override;
  Result<std::vector<Record>> Find(const Json& query,
                                   const std::optional<std::vector<std::string>>& keys) override;
  Result<size_t> DropMatching(const Json& query) override;
  Status Drop(const std::string& msg_id) override;
  Result<std::vector<std::string>> History() override;
  size_t Size() const override { return count_; }
  Status Flush() override;

  // The table actually in use (`table`, or `table_<n>` when `table` had another layout).
  const std::string& table() const { return table_; }

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  using Db = std::unique_ptr<sqlite3, DbCloser>;
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  // A decoded row, with its insertion order (rowid) for sorting.
  struct Row {
    int64_t rowid;
    Record record;
  };

  // The accepted writes of the open transaction, kept so that they can be re-applied if
  // SQLite rolls the whole transaction back (it may on a full disk or an I/O error).
  struct AddOp {
    std::string msg_id;
    Record record;
  };
  struct UpdateOp {
    std::string msg_id;
    RecordUpdate update;
  };
  struct DropOp {
    std::string msg_id;
  };
  using WriteOp = std::variant<AddOp, UpdateOp, DropOp>;

  SqliteStore(Db db, std::string path, SqliteStoreOptions options);

  Status Init(const std::string& table);
  Status ChooseTable(const std::string& base);
  Status Prepare(const std::string& sql, Stmt* out);
  Status Exec(const char* sql, std::string_view context);
  // Converts a failed SQLite call (see sqlite_status.h) and notes whether it cost the open
  // transaction; Settle() then restores it once no statement is mid-step.
  Status Fail(int rc, std::string_view context);
  Status Settle(Status st);
  template <typename T>
  Result<T> Settle(Result<T> r) {
    if (r.ok()) return r;
    return Settle(r.status());
  }
  Status Replay();
  Status Recount();

  // The operations behind the public methods (which Settle their outcome).
  Status DoAdd(const std::string& msg_id, Record record);
  Status DoUpdate(const std::string& msg_id, RecordUpdate update);
  Status DoAppendText(const std::string& msg_id, std::string_view key, std::string_view text);
  Result<Record> DoGet(const std::string& msg_id);
  Result<std::vector<Record>> DoFind(const Json& query,
                                     const std::optional<std::vector<std::string>>& keys);
  Result<size_t> DoDropMatching(const Json& query);
  Result<std::vector<std::string>> DoHistory();

  Result<bool> Exists(const std::string& msg_id);
  // Steps `s` to its next row and decodes it (buffers only when asked); false at the end.
  Result<bool> NextRow(sqlite3_stmt* s, bool with_buffers, Row* row);
  Result<std::vector<Row>> MatchRows(const Json& query, bool with_buffers);
  Result<sqlite3_stmt*> UpdateStatement(uint32_t column_mask);

  // Runs `op` inside the batch and journals it.
  Status Write(WriteOp op);
  Status Apply(const WriteOp& op);
  Status ApplyAdd(const AddOp& op);
  Status ApplyUpdate(const UpdateOp& op);
  Status ApplyDrop(const DropOp& op);
  Status BeginWrite();
  Status Commit();

  Db db_;  // first member: closed after every statement below is finalized
  std::string path_;
  std::string table_;
  SqliteStoreOptions options_;
  size_t count_ = 0;
  bool in_txn_ = false;
  bool lost_txn_ = false;  // SQLite rolled back the open transaction; Settle() replays it
  Micros txn_started_ = 0;
  std::vector<WriteOp> journal_;

  Stmt insert_, exists_, select_one_, select_all_, delete_, history_, count_rows_;
  std::unordered_map<uint32_t, Stmt> updates_;  // by the bit set of columns they write
};

}  // namespace shoal::store
