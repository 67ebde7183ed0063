// RecordStore: where the controller keeps one record per task (request, result, output).
//
// A record is IPython Parallel's task record: a JSON object with the keys listed in
// kRecordKeys (dates as ISO strings, headers and contents as JSON objects) plus two lists
// of binary buffers. Backends: MemoryStore (default, bounded), SqliteStore (persistent),
// NoStore (stores nothing). All pass the same contract test suite (record_store_contract_test.cc).
//
// Queries follow IPython Parallel's Mongo-style subset: {key: literal} (equality; null matches
// null or a missing key) or {key: {"$op": arg, ...}} with $lt $gt $lte $gte $eq $ne $in $nin
// $all $mod $exists $glob; conditions are ANDed. Any string in a query that looks like an ISO
// date (wire::LooksLikeIsoDate) is compared as an instant against date-valued record keys.
//
// Shape: Add/Update take fields whose keys are all in kRecordKeys (date keys null or ISO dates);
// anything else is kInvalidArgument and changes nothing. Get and an unprojected Find return
// every key of kRecordKeys (absent ones as null), whatever the backend.
//
// Thread rule: not thread-safe; the controller calls a store from its one event-loop thread.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/status.h"
#include "shoal/store/blob.h"

namespace shoal::store {

using Json = nlohmann::json;

// The 21 JSON keys of a record, in IPython Parallel's order; with "buffers" and
// "result_buffers" (the two binary lists, which live outside `fields`) they make the 23 keys
// of IPython Parallel's task record.
inline constexpr std::array<std::string_view, 21> kRecordKeys = {
    "msg_id",        "header",         "metadata",        "content",        "submitted",
    "client_uuid",   "engine_uuid",    "started",         "completed",      "resubmitted",
    "received",      "result_header",  "result_metadata", "result_content", "queue",
    "execute_input", "execute_result", "error",           "stdout",         "stderr",
    "label"};

// The keys whose values are dates (ISO strings in `fields`).
inline constexpr std::array<std::string_view, 4> kDateKeys = {"submitted", "started", "completed",
                                                              "received"};

struct Record {
  Json fields = Json::object();      // any subset of kRecordKeys; absent keys read as null
  std::vector<Blob> buffers;         // request buffers
  std::vector<Blob> result_buffers;  // reply buffers
};

// A partial update: keys in `fields` overwrite; buffer lists are replaced when set.
struct RecordUpdate {
  Json fields = Json::object();
  std::optional<std::vector<Blob>> buffers;
  std::optional<std::vector<Blob>> result_buffers;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // Adds a new record under `msg_id` (also written into fields["msg_id"]).
  // kAlreadyExists if present; kInvalidArgument for bad fields; kIOError on a storage failure.
  virtual Status Add(const std::string& msg_id, Record record) = 0;

  // Merges `update` into the record. kNotFound if absent (including culled records, whose
  // message says "culled"); kInvalidArgument for bad fields; kIOError on a storage failure.
  virtual Status Update(const std::string& msg_id, RecordUpdate update) = 0;

  // Appends `text` to the string field `key` ("stdout"/"stderr"), treating null as "".
  // kNotFound if the record is absent; kInvalidArgument if `key` is not a text key or holds a
  // non-string value.
  virtual Status AppendText(const std::string& msg_id, std::string_view key,
                            std::string_view text) = 0;

  // A copy of the record. kNotFound if absent.
  virtual Result<Record> Get(const std::string& msg_id) = 0;

  // Records matching `query`, ordered by "submitted" (records without one last, by insertion).
  // When `keys` is set, each result's fields hold only those keys plus "msg_id"; buffers are
  // returned only when "buffers" / "result_buffers" are named in `keys`.
  // kInvalidArgument for a malformed query, an unknown operator, or a key in `keys` that is
  // neither a record key nor a buffer list.
  virtual Result<std::vector<Record>> Find(const Json& query,
                                           const std::optional<std::vector<std::string>>& keys) = 0;

  // Removes every record matching `query`; returns how many. kInvalidArgument as for Find.
  virtual Result<size_t> DropMatching(const Json& query) = 0;

  // Removes one record; kNotFound if absent.
  virtual Status Drop(const std::string& msg_id) = 0;

  // msg_ids of every record with a "submitted" date, oldest first (ties by insertion).
  virtual Result<std::vector<std::string>> History() = 0;

  // Number of records held.
  virtual size_t Size() const = 0;

  // Makes every accepted write durable (a backend that batches commits does so here, and the
  // controller calls this on a timer and at shutdown). kIOError on a storage failure.
  virtual Status Flush() { return Status::Ok(); }
};

}  // namespace shoal::store
