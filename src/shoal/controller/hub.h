// Hub: the controller's bookkeeping and its answers to client queries.
//
// The relays tell the Hub what passes through them (requests, task assignments, results,
// iopub output); the Hub keeps IPython Parallel's task records in a RecordStore and its own
// tables (pending, per-engine queues/tasks/completed, unassigned) and answers the query
// messages of the registration socket: queue_request, result_request, history_request,
// db_request, purge_request (resubmit and shutdown need sockets and live in Controller).
// Error answers use IPython Parallel's error content with exact enames.
//
// Thread rule: single-threaded (the controller's event loop).
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/controller/engine_registry.h"
#include "shoal/store/record_store.h"
#include "shoal/wire/message.h"

namespace shoal::controller {

using Json = nlohmann::json;

// IPython Parallel's error content: {"status": "error", "ename", "evalue", "traceback",
// "engine_info": {}} (controller-made errors carry an empty engine_info).
Json ErrorContent(const std::string& ename, const std::string& evalue);

// A zero-copy Blob sharing `frame`'s data, and back.
store::Blob BlobFromFrame(zmq::message_t& frame);
zmq::message_t FrameFromBlob(const store::Blob& blob);

struct QueryReply {
  std::string_view msg_type;  // one of the wire::msg constants
  Json content;
  wire::Frames buffers;
};

class Hub {
 public:
  // `store`, `registry` and `clock` must outlive the Hub.
  Hub(store::RecordStore& store, const EngineRegistry& registry, const Clock& clock);

  // Both OnRequest and OnResult move the parsed header/metadata/content out of the Message
  // into the record; afterwards the caller may only use its frames.
  // A request seen on the mux (queue "mux", engine = target uuid) or task channel
  // (queue "task", engine empty: unassigned until OnTaskAssigned). Buffers are shared.
  void OnRequest(wire::Message& request, const std::string& queue, const std::string& engine_uuid);
  // The task scheduler sent `msg_id` to `engine_uuid`.
  void OnTaskAssigned(const std::string& msg_id, const std::string& engine_uuid);
  // A final reply (from an engine, or made by the controller) for a mux or task request.
  // `engine_uuid` is who ran it ("" for scheduler-made failures).
  void OnResult(wire::Message& reply, const std::string& engine_uuid);
  // An iopub message from an engine (stream, execute_input, execute_result, error,
  // display_data are recorded; other types ignored).
  void OnIopub(const wire::Message& msg);
  // A resubmitted task's new record: old header with a new msg_id/date, old content/buffers.
  void OnResubmitted(const std::string& old_id, const std::string& new_id, const Json& header,
                     const Json& metadata, const Json& content, std::vector<store::Blob> buffers);
  // Engine `info` died: its mux requests that are still pending are completed with an
  // EngineError record. Returns their msg_ids.
  // `reason` ("" when unknown) is appended to the EngineError text.
  std::vector<std::string> FailStrandedMux(const EngineInfo& info, const std::string& reason = "");

  // Answers a query. `msg_type` is the request type; content is the parsed request content.
  QueryReply HandleQuery(const std::string& msg_type, const Json& content);

  bool IsPending(const std::string& msg_id) const { return pending_.count(msg_id) > 0; }
  store::RecordStore& store() { return store_; }

 private:
  QueryReply Queue(const Json& content);
  QueryReply Results(const Json& content);
  QueryReply History();
  QueryReply Db(const Json& content);
  QueryReply Purge(const Json& content);
  // Resolves a queue_request/purge target list to engine ids. kNotFound names the bad target.
  Result<std::vector<int>> ResolveTargets(const Json& targets) const;
  void LogStoreError(const Status& st, const std::string& msg_id);
  Json NewRecordFields(Json header, Json metadata, Json content, const std::string& queue,
                       const std::string& engine_uuid) const;

  store::RecordStore& store_;
  const EngineRegistry& registry_;
  const Clock& clock_;
  std::unordered_set<std::string> pending_;
  std::unordered_set<std::string> unassigned_;
  std::unordered_map<int, std::unordered_set<std::string>> queues_;  // mux pending per engine
  std::unordered_map<int, std::unordered_set<std::string>> tasks_;   // assigned tasks
  // Finished per engine: a count, and the most recent msg_ids for verbose queue_status
  // (bounded so that millions of tasks do not grow the controller).
  struct Completed {
    size_t count = 0;
    std::deque<std::string> recent;
  };
  static constexpr size_t kRecentCompleted = 10000;
  std::unordered_map<int, Completed> completed_;
  std::unordered_map<std::string, int> mux_engine_;   // pending mux -> engine id
  std::unordered_map<std::string, int> task_engine_;  // assigned task -> id
};

}  // namespace shoal::controller
