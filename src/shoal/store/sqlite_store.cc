#include "shoal/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <deque>
#include <tuple>
#include <utility>
#include <variant>

#include "shoal/store/blob_codec.h"
#include "shoal/store/query.h"
#include "shoal/store/record_fields.h"
#include "shoal/store/sqlite_status.h"
#include "shoal/wire/iso_date.h"

namespace shoal::store {
namespace {

// Upstream's column order, with 9.x's "label" last.
constexpr std::array<std::string_view, 23> kColumns = {
    "msg_id",         "header",      "metadata",      "content",         "buffers",
    "submitted",      "client_uuid", "engine_uuid",   "started",         "completed",
    "resubmitted",    "received",    "result_header", "result_metadata", "result_content",
    "result_buffers", "queue",       "execute_input", "execute_result",  "error",
    "stdout",         "stderr",      "label"};
constexpr int kMsgIdColumn = 0;

bool IsBufferColumn(std::string_view name) { return name == "buffers" || name == "result_buffers"; }

int ColumnIndex(std::string_view name) {
  for (size_t i = 0; i < kColumns.size(); ++i)
    if (kColumns[i] == name) return static_cast<int>(i);
  return -1;
}

// Declared types; also how a table of the right layout is recognised.
std::string_view DeclaredType(std::string_view name) {
  if (IsBufferColumn(name)) return "buffers";
  switch (KindOfKey(name)) {
    case FieldKind::kDate:
      return "timestamp";
    case FieldKind::kJson:
      return "json";
    case FieldKind::kText:
      break;
  }
  return "text";
}

std::string Quote(std::string_view identifier) {
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ColumnList() {
  std::string out;
  for (std::string_view c : kColumns) {
    if (!out.empty()) out += ", ";
    out += Quote(c);
  }
  return out;
}

// Resets a statement when a call is done with it, whichever way it returns, so that bound
// SQLITE_STATIC buffers are never read after they die and the next use starts clean.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* s) : s_(s) {}
  ~ResetOnExit() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* s_;
};

int BindText(sqlite3_stmt* s, int param, std::string_view text) {
  return sqlite3_bind_text64(s, param, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

int BindBlob(sqlite3_stmt* s, int param, std::string_view bytes) {
  return sqlite3_bind_blob64(s, param, bytes.data(), bytes.size(), SQLITE_STATIC);
}

// Binds the value of non-buffer column `name`; `scratch` keeps encoded text alive until the
// statement has run (deque: growth never moves earlier strings).
int BindField(sqlite3_stmt* s, int param, std::string_view name, const Json& v,
              std::deque<std::string>& scratch) {
  if (v.is_null()) return sqlite3_bind_null(s, param);
  if (KindOfKey(name) != FieldKind::kJson && v.is_string())
    return BindText(s, param, v.get_ref<const std::string&>());
  scratch.push_back(v.dump());
  // A text column holding a non-string keeps its JSON in a BLOB, so that reading it back
  // can tell the number 5 from the string "5".
  if (KindOfKey(name) == FieldKind::kJson) return BindText(s, param, scratch.back());
  return BindBlob(s, param, scratch.back());
}

std::string_view ColumnBytes(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_type(s, col) == SQLITE_BLOB ? sqlite3_column_blob(s, col)
                                                             : sqlite3_column_text(s, col);
  int n = sqlite3_column_bytes(s, col);
  return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

Result<Json> ParseStoredJson(std::string_view text, std::string_view name) {
  Json v = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded())
    return Status::IOError("stored value of '" + std::string(name) + "' is not valid JSON");
  return v;
}

// Decodes result column `col` that holds record key `name`.
Result<Json> DecodeField(sqlite3_stmt* s, int col, std::string_view name) {
  switch (sqlite3_column_type(s, col)) {
    case SQLITE_NULL:
      return Json();
    case SQLITE_INTEGER:
      return Json(static_cast<int64_t>(sqlite3_column_int64(s, col)));
    case SQLITE_FLOAT:
      return Json(sqlite3_column_double(s, col));
    case SQLITE_BLOB:
      return ParseStoredJson(ColumnBytes(s, col), name);
    default:  // SQLITE_TEXT
      if (KindOfKey(name) == FieldKind::kJson) return ParseStoredJson(ColumnBytes(s, col), name);
      return Json(std::string(ColumnBytes(s, col)));
  }
}

Result<std::vector<Blob>> DecodeBuffers(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::vector<Blob>();
  return DecodeBlobs(ColumnBytes(s, col));
}

// Sort key: records with a "submitted" date first, by date, then by insertion.
std::tuple<bool, Micros, int64_t> OrderOf(const Json& fields, int64_t rowid) {
  std::optional<Micros> submitted = DateOf(fields, "submitted");
  return {!submitted.has_value(), submitted.value_or(0), rowid};
}

}  // namespace

void SqliteStore::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void SqliteStore::StmtFinalizer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

SqliteStore::SqliteStore(Db db, std::string path, SqliteStoreOptions options)
    : db_(std::move(db)), path_(std::move(path)), options_(options) {
  if (options_.clock == nullptr) options_.clock = &SystemClock::Instance();
}

SqliteStore::~SqliteStore() {
  Status st = Flush();
  if (!st.ok()) st = Flush();  // a replayed batch gets one more chance
  if (!st.ok())
    std::fprintf(stderr, "shoal: SqliteStore %s: final commit failed, %zu writes lost: %s\n",
                 path_.c_str(), journal_.size(), st.ToString().c_str());
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                       const std::string& table,
                                                       SqliteStoreOptions options) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Db db(raw);  // closes the handle on every path, even a failed open
  if (rc != SQLITE_OK) return SqliteStatus(rc, raw, "opening SQLite database '" + path + "'");
  sqlite3_extended_result_codes(raw, 1);
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db), path, options));
  SHOAL_RETURN_NOT_OK(store->Init(table));
  return store;
}

// ---- errors and recovery -------------------------------------------------------------------

Status SqliteStore::Fail(int rc, std::string_view context) {
  Status st = SqliteStatus(rc, db_.get(), std::string(context) + " in '" + path_ + "'");
  if (in_txn_ && sqlite3_get_autocommit(db_.get())) {
    in_txn_ = false;
    lost_txn_ = true;
  }
  return st;
}

Status SqliteStore::Settle(Status st) {
  if (!lost_txn_) return st;
  lost_txn_ = false;
  const size_t batch = journal_.size();
  Status replay = Replay();
  if (replay.ok() && batch == 0) return st;
  if (replay.ok()) {
    return Status::IOError(st.message() + "; SQLite rolled back the open batch, and its " +
                           std::to_string(batch) + " earlier writes were re-applied");
  }
  return Status::IOError(st.message() +
                         "; SQLite rolled back the open batch and re-applying it "
                         "failed (" +
                         replay.message() + "): " + std::to_string(batch) +
                         " accepted writes were lost");
}

Status SqliteStore::Replay() {
  Status st = BeginWrite();
  for (size_t i = 0; st.ok() && i < journal_.size(); ++i) st = Apply(journal_[i]);
  if (!st.ok()) {
    if (in_txn_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    in_txn_ = false;
    lost_txn_ = false;
    journal_.clear();
  }
  Status recount = Recount();  // Apply counted the replayed writes a second time
  return st.ok() ? recount : st;
}

Status SqliteStore::Recount() {
  sqlite3_stmt* s = count_rows_.get();
  ResetOnExit reset(s);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return Fail(rc, "counting records");
  count_ = static_cast<size_t>(sqlite3_column_int64(s, 0));
  return Status::Ok();
}

Status SqliteStore::Prepare(const std::string& sql, Stmt* out) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size() + 1),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  out->reset(s);
  if (rc != SQLITE_OK) return Fail(rc, "preparing \"" + sql + "\"");
  return Status::Ok();
}

Status SqliteStore::Exec(const char* sql, std::string_view context) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Fail(rc, context);
  return Status::Ok();
}

// ---- set-up ------------------------------------------------------------------------------

Status SqliteStore::Init(const std::string& table) {
  sqlite3_busy_timeout(db_.get(), 5000);
  // WAL + synchronous=NORMAL: commits are cheap appends and a crash cannot corrupt the file.
  SHOAL_RETURN_NOT_OK(Exec("PRAGMA journal_mode=WAL", "setting the journal mode"));
  SHOAL_RETURN_NOT_OK(Exec("PRAGMA synchronous=NORMAL", "setting synchronous mode"));
  if (options_.max_page_count > 0) {
    std::string sql = "PRAGMA max_page_count=" + std::to_string(options_.max_page_count);
    SHOAL_RETURN_NOT_OK(Exec(sql.c_str(), "setting max_page_count"));
  }
  SHOAL_RETURN_NOT_OK(ChooseTable(table));

  const std::string t = Quote(table_);
  std::string params;
  for (size_t i = 1; i <= kColumns.size(); ++i) params += (i > 1 ? ", ?" : "?");
  SHOAL_RETURN_NOT_OK(
      Prepare("INSERT INTO " + t + " (" + ColumnList() + ") VALUES (" + params + ")", &insert_));
  SHOAL_RETURN_NOT_OK(Prepare("SELECT 1 FROM " + t + " WHERE \"msg_id\" = ?", &exists_));
  SHOAL_RETURN_NOT_OK(Prepare(
      "SELECT rowid, " + ColumnList() + " FROM " + t + " WHERE \"msg_id\" = ?", &select_one_));
  SHOAL_RETURN_NOT_OK(Prepare("SELECT rowid, " + ColumnList() + " FROM " + t, &select_all_));
  SHOAL_RETURN_NOT_OK(Prepare("DELETE FROM " + t + " WHERE \"msg_id\" = ?", &delete_));
  SHOAL_RETURN_NOT_OK(Prepare(
      "SELECT rowid, \"msg_id\", \"submitted\" FROM " + t + " WHERE \"submitted\" IS NOT NULL",
      &history_));
  SHOAL_RETURN_NOT_OK(Prepare("SELECT COUNT(*) FROM " + t, &count_rows_));
  return Recount();
}

Status SqliteStore::ChooseTable(const std::string& base) {
  std::vector<std::pair<std::string, std::string>> expected;
  for (std::string_view c : kColumns) expected.emplace_back(c, DeclaredType(c));

  for (int n = 0; n < 1000; ++n) {
    std::string name = n == 0 ? base : base + "_" + std::to_string(n);
    Stmt info;
    SHOAL_RETURN_NOT_OK(Prepare("PRAGMA table_info(" + Quote(name) + ")", &info));
    std::vector<std::pair<std::string, std::string>> found;
    int rc;
    while ((rc = sqlite3_step(info.get())) == SQLITE_ROW) {
      std::string type(ColumnBytes(info.get(), 2));
      // SQLite reports some declared types in upper case ("TEXT" for the primary key).
      for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      found.emplace_back(ColumnBytes(info.get(), 1), std::move(type));
    }
    if (rc != SQLITE_DONE) return Fail(rc, "reading the layout of table " + Quote(name));
    if (found == expected) {
      table_ = name;
      return Status::Ok();
    }
    if (!found.empty()) continue;  // another layout (e.g. Python's pickled buffers): skip it

    std::string sql = "CREATE TABLE " + Quote(name) + " (";
    for (size_t i = 0; i < kColumns.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += Quote(kColumns[i]) + " " + std::string(DeclaredType(kColumns[i]));
      if (static_cast<int>(i) == kMsgIdColumn) sql += " PRIMARY KEY";
    }
    sql += ")";
    SHOAL_RETURN_NOT_OK(Exec(sql.c_str(), "creating table " + Quote(name)));
    table_ = name;
    return Status::Ok();
  }
  return Status::IOError("no free table name for '" + base + "' in '" + path_ + "'");
}

// ---- public API ----------------------------------------------------------------------------

Status SqliteStore::Add(const std::string& msg_id, Record record) {
  return Settle(DoAdd(msg_id, std::move(record)));
}
Status SqliteStore::Update(const std::string& msg_id, RecordUpdate update) {
  return Settle(DoUpdate(msg_id, std::move(update)));
}
Status SqliteStore::AppendText(const std::string& msg_id, std::string_view key,
                               std::string_view text) {
  return Settle(DoAppendText(msg_id, key, text));
}
Result<Record> SqliteStore::Get(const std::string& msg_id) { return Settle(DoGet(msg_id)); }
Result<std::vector<Record>> SqliteStore::Find(const Json& query,
                                              const std::optional<std::vector<std::string>>& keys) {
  return Settle(DoFind(query, keys));
}
Result<size_t> SqliteStore::DropMatching(const Json& query) {
  return Settle(DoDropMatching(query));
}
Status SqliteStore::Drop(const std::string& msg_id) { return Settle(Write(DropOp{msg_id})); }
Result<std::vector<std::string>> SqliteStore::History() { return Settle(DoHistory()); }
Status SqliteStore::Flush() { return Settle(Commit()); }

// ---- reads ---------------------------------------------------------------------------------

Result<bool> SqliteStore::Exists(const std::string& msg_id) {
  sqlite3_stmt* s = exists_.get();
  ResetOnExit reset(s);
  BindText(s, 1, msg_id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Fail(rc, "looking up record '" + msg_id + "'");
}

Result<bool> SqliteStore::NextRow(sqlite3_stmt* s, bool with_buffers, Row* row) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return Fail(rc, "reading records");
  row->rowid = sqlite3_column_int64(s, 0);
  row->record.fields = Json::object();
  for (size_t i = 0; i < kColumns.size(); ++i) {
    const int col = static_cast<int>(i) + 1;  // result column 0 is the rowid
    if (IsBufferColumn(kColumns[i])) {
      if (!with_buffers) continue;
      SHOAL_ASSIGN_OR_RETURN(auto buffers, DecodeBuffers(s, col));
      (kColumns[i] == "buffers" ? row->record.buffers : row->record.result_buffers) =
          std::move(buffers);
      continue;
    }
    SHOAL_ASSIGN_OR_RETURN(Json value, DecodeField(s, col, kColumns[i]));
    row->record.fields.emplace(std::string(kColumns[i]), std::move(value));
  }
  return true;
}

Result<Record> SqliteStore::DoGet(const std::string& msg_id) {
  sqlite3_stmt* s = select_one_.get();
  ResetOnExit reset(s);
  BindText(s, 1, msg_id);
  Row row;
  SHOAL_ASSIGN_OR_RETURN(bool found, NextRow(s, /*with_buffers=*/true, &row));
  if (!found) return Status::NotFound("no record for msg_id '" + msg_id + "'");
  return std::move(row.record);
}

Result<std::vector<SqliteStore::Row>> SqliteStore::MatchRows(const Json& query, bool with_buffers) {
  SHOAL_ASSIGN_OR_RETURN(Query q, Query::Compile(query));
  std::vector<Row> rows;
  auto collect = [&](sqlite3_stmt* s) -> Status {
    while (true) {
      Row row;
      SHOAL_ASSIGN_OR_RETURN(bool more, NextRow(s, with_buffers, &row));
      if (!more) return Status::Ok();
      if (q.Matches(row.record.fields)) rows.push_back(std::move(row));
    }
  };
  if (q.msg_id_candidates()) {
    for (const std::string& id : *q.msg_id_candidates()) {
      sqlite3_stmt* s = select_one_.get();
      ResetOnExit reset(s);
      BindText(s, 1, id);
      SHOAL_RETURN_NOT_OK(collect(s));
    }
  } else {
    ResetOnExit reset(select_all_.get());
    SHOAL_RETURN_NOT_OK(collect(select_all_.get()));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return OrderOf(a.record.fields, a.rowid) < OrderOf(b.record.fields, b.rowid);
  });
  // A msg_id listed twice in $in is still one record.
  rows.erase(std::unique(rows.begin(), rows.end(),
                         [](const Row& a, const Row& b) { return a.rowid == b.rowid; }),
             rows.end());
  return rows;
}

Result<std::vector<Record>> SqliteStore::DoFind(
    const Json& query, const std::optional<std::vector<std::string>>& keys) {
  if (keys) SHOAL_RETURN_NOT_OK(ValidateProjection(*keys));
  const bool with_buffers = !keys || Names(*keys, "buffers") || Names(*keys, "result_buffers");
  SHOAL_ASSIGN_OR_RETURN(std::vector<Row> rows, MatchRows(query, with_buffers));
  std::vector<Record> out;
  out.reserve(rows.size());
  for (Row& row : rows) {
    if (!keys) {
      out.push_back(std::move(row.record));
      continue;
    }
    Record projected{ProjectFields(row.record.fields, *keys), {}, {}};
    if (Names(*keys, "buffers")) projected.buffers = std::move(row.record.buffers);
    if (Names(*keys, "result_buffers"))
      projected.result_buffers = std::move(row.record.result_buffers);
    out.push_back(std::move(projected));
  }
  return out;
}

Result<std::vector<std::string>> SqliteStore::DoHistory() {
  sqlite3_stmt* s = history_.get();
  ResetOnExit reset(s);
  std::vector<std::tuple<Micros, int64_t, std::string>> dated;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto when = wire::ParseIsoDate(ColumnBytes(s, 2));
    if (!when.ok()) continue;  // same rule as MemoryStore: only parseable dates count
    dated.emplace_back(*when, sqlite3_column_int64(s, 0), std::string(ColumnBytes(s, 1)));
  }
  if (rc != SQLITE_DONE) return Fail(rc, "reading the history");
  std::sort(dated.begin(), dated.end());
  std::vector<std::string> out;
  out.reserve(dated.size());
  for (auto& d : dated) out.push_back(std::move(std::get<2>(d)));
  return out;
}

// ---- writes --------------------------------------------------------------------------------

Status SqliteStore::DoAdd(const std::string& msg_id, Record record) {
  SHOAL_ASSIGN_OR_RETURN(bool exists, Exists(msg_id));
  if (exists) return Status::AlreadyExists("a record for msg_id '" + msg_id + "' already exists");
  SHOAL_RETURN_NOT_OK(ValidateFields(record.fields, msg_id));
  return Write(AddOp{msg_id, std::move(record)});
}

Status SqliteStore::DoUpdate(const std::string& msg_id, RecordUpdate update) {
  SHOAL_RETURN_NOT_OK(ValidateFields(update.fields, msg_id));
  return Write(UpdateOp{msg_id, std::move(update)});
}

Status SqliteStore::DoAppendText(const std::string& msg_id, std::string_view key,
                                 std::string_view text) {
  SHOAL_RETURN_NOT_OK(ValidateAppendKey(key));
  std::string value;
  {
    sqlite3_stmt* s = select_one_.get();
    ResetOnExit reset(s);
    BindText(s, 1, msg_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return Status::NotFound("no record for msg_id '" + msg_id + "'");
    if (rc != SQLITE_ROW) return Fail(rc, "reading record '" + msg_id + "'");
    SHOAL_ASSIGN_OR_RETURN(Json current, DecodeField(s, ColumnIndex(key) + 1, key));
    if (!current.is_null() && !current.is_string())
      return Status::InvalidArgument("record key '" + std::string(key) + "' of '" + msg_id +
                                     "' holds a " + current.type_name() + ", not text");
    if (current.is_string()) value = std::move(current.get_ref<std::string&>());
  }
  value.append(text);
  RecordUpdate update;
  update.fields[std::string(key)] = std::move(value);
  return Write(UpdateOp{msg_id, std::move(update)});
}

Result<size_t> SqliteStore::DoDropMatching(const Json& query) {
  SHOAL_ASSIGN_OR_RETURN(std::vector<Row> rows, MatchRows(query, /*with_buffers=*/false));
  for (Row& row : rows) {
    SHOAL_RETURN_NOT_OK(Write(DropOp{row.record.fields.value("msg_id", std::string())}));
  }
  return rows.size();
}

Status SqliteStore::Write(WriteOp op) {
  SHOAL_RETURN_NOT_OK(BeginWrite());
  SHOAL_RETURN_NOT_OK(Apply(op));  // a failed write is not journaled: it never happened
  journal_.push_back(std::move(op));
  if (journal_.size() >= options_.commit_every ||
      options_.clock->MonotonicMicros() - txn_started_ >= options_.commit_interval)
    return Commit();
  return Status::Ok();
}

Status SqliteStore::Apply(const WriteOp& op) {
  if (const auto* add = std::get_if<AddOp>(&op)) return ApplyAdd(*add);
  if (const auto* update = std::get_if<UpdateOp>(&op)) return ApplyUpdate(*update);
  return ApplyDrop(std::get<DropOp>(op));
}

Status SqliteStore::ApplyAdd(const AddOp& op) {
  sqlite3_stmt* s = insert_.get();
  ResetOnExit reset(s);
  std::deque<std::string> scratch;
  for (size_t i = 0; i < kColumns.size(); ++i) {
    const int param = static_cast<int>(i) + 1;
    const std::string_view name = kColumns[i];
    int rc;
    if (IsBufferColumn(name)) {
      scratch.push_back(
          EncodeBlobs(name == "buffers" ? op.record.buffers : op.record.result_buffers));
      rc = BindBlob(s, param, scratch.back());
    } else if (static_cast<int>(i) == kMsgIdColumn) {
      rc = BindText(s, param, op.msg_id);
    } else {
      auto it = op.record.fields.find(name);
      rc = it == op.record.fields.end() ? sqlite3_bind_null(s, param)
                                        : BindField(s, param, name, *it, scratch);
    }
    if (rc != SQLITE_OK) return Fail(rc, "binding '" + std::string(name) + "'");
  }
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return Fail(rc, "adding record '" + op.msg_id + "'");
  ++count_;
  return Status::Ok();
}

Result<sqlite3_stmt*> SqliteStore::UpdateStatement(uint32_t column_mask) {
  auto it = updates_.find(column_mask);
  if (it != updates_.end()) return it->second.get();
  std::string sql = "UPDATE " + Quote(table_) + " SET ";
  bool first = true;
  for (size_t i = 0; i < kColumns.size(); ++i) {
    if (!(column_mask & (1u << i))) continue;
    if (!first) sql += ", ";
    first = false;
    sql += Quote(kColumns[i]) + " = ?";
  }
  sql += " WHERE \"msg_id\" = ?";
  Stmt stmt;
  SHOAL_RETURN_NOT_OK(Prepare(sql, &stmt));
  return updates_.emplace(column_mask, std::move(stmt)).first->second.get();
}

Status SqliteStore::ApplyUpdate(const UpdateOp& op) {
  const RecordUpdate& update = op.update;
  uint32_t mask = 0;
  for (const auto& [key, value] : update.fields.items())
    if (key != "msg_id") mask |= 1u << ColumnIndex(key);
  if (update.buffers) mask |= 1u << ColumnIndex("buffers");
  if (update.result_buffers) mask |= 1u << ColumnIndex("result_buffers");
  if (mask == 0) {  // nothing to write, but a missing record is still an error
    SHOAL_ASSIGN_OR_RETURN(bool exists, Exists(op.msg_id));
    return exists ? Status::Ok() : Status::NotFound("no record for msg_id '" + op.msg_id + "'");
  }

  SHOAL_ASSIGN_OR_RETURN(sqlite3_stmt * s, UpdateStatement(mask));
  ResetOnExit reset(s);
  std::deque<std::string> scratch;
  int param = 0;
  for (size_t i = 0; i < kColumns.size(); ++i) {
    if (!(mask & (1u << i))) continue;
    const std::string_view name = kColumns[i];
    int rc;
    if (name == "buffers") {
      scratch.push_back(EncodeBlobs(*update.buffers));
      rc = BindBlob(s, ++param, scratch.back());
    } else if (name == "result_buffers") {
      scratch.push_back(EncodeBlobs(*update.result_buffers));
      rc = BindBlob(s, ++param, scratch.back());
    } else {
      rc = BindField(s, ++param, name, *update.fields.find(name), scratch);
    }
    if (rc != SQLITE_OK) return Fail(rc, "binding '" + std::string(name) + "'");
  }
  BindText(s, ++param, op.msg_id);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return Fail(rc, "updating record '" + op.msg_id + "'");
  if (sqlite3_changes(db_.get()) == 0)
    return Status::NotFound("no record for msg_id '" + op.msg_id + "'");
  return Status::Ok();
}

Status SqliteStore::ApplyDrop(const DropOp& op) {
  sqlite3_stmt* s = delete_.get();
  ResetOnExit reset(s);
  BindText(s, 1, op.msg_id);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return Fail(rc, "dropping record '" + op.msg_id + "'");
  if (sqlite3_changes(db_.get()) == 0)
    return Status::NotFound("no record for msg_id '" + op.msg_id + "'");
  --count_;
  return Status::Ok();
}

// ---- batching ------------------------------------------------------------------------------

Status SqliteStore::BeginWrite() {
  if (in_txn_) return Status::Ok();
  SHOAL_RETURN_NOT_OK(Exec("BEGIN", "starting a transaction"));
  in_txn_ = true;
  txn_started_ = options_.clock->MonotonicMicros();
  return Status::Ok();
}

Status SqliteStore::Commit() {
  if (!in_txn_) return Status::Ok();
  int rc = sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    in_txn_ = false;
    journal_.clear();
    return Status::Ok();
  }
  // A failed COMMIT normally leaves the transaction open, to be retried by the next commit;
  // if SQLite rolled it back instead, Settle() re-applies the journal.
  return Fail(rc, "committing " + std::to_string(journal_.size()) + " writes");
}

}  // namespace shoal::store
