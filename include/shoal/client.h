// shoal's C++ client: connect to a shoal (or IPython Parallel 7.1) controller, see its
// engines, send requests, and wait for replies and output.
//
//   auto client = shoal::Client::Connect({.profile_dir = "/path/to/profile"});
//   if (!client.ok()) ...;
//   (*client)->WaitForEngines(2, std::chrono::seconds(30));
//   auto sent = (*client)->Execute((*client)->ids(), "print('hi')");
//   for (auto& s : *sent) {
//     if (s.Wait(std::chrono::seconds(10)).ok()) std::cout << s.outputs->stdout_text();
//   }
//
// Every request returns at once with Submitted handles: the request's msg_id, a
// Future<ReplyPtr> for the reply, and (for shell requests) the Outputs the engine publishes
// on iopub (stdout, stderr, results, errors), complete once the engine reports `idle`.
// A reply whose content says "error" is still a Reply: Reply::error() turns it into a
// kRemoteError Status ("ename: evalue"). Futures complete with a non-OK Status only when the
// client itself fails: kCancelled after Close(), kUnavailable when the controller shut down,
// kIOError when the request could not be sent. Requests on an engine that unregisters get a
// synthesized EngineError reply (with the controller's reason, when it gave one).
//
// Thread rule: a Client is used from any number of threads at once. It owns one I/O thread
// that owns every socket; requests cross to it through a queue, replies come back through
// futures. Callbacks registered on futures run on that I/O thread and must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "shoal/future.h"
#include "shoal/status.h"

namespace shoal {

using Json = nlohmann::json;
using Frames = std::vector<zmq::message_t>;
using Micros = std::chrono::microseconds;

// The controller's client-facing channels a request can go to.
enum class Channel {
  kQuery,      // hub queries (registration DEALER)
  kMux,        // direct execution on named engines
  kTask,       // load-balanced execution
  kControl,    // abort / clear / signal / shutdown on named engines
  kBroadcast,  // one request fanned out to named engines by the controller
};

struct EngineInfo {
  int id = -1;
  std::string uuid;
};

// One reply, immutable once delivered. Keeps the frames as received: the JSON parts are
// parsed on first use (on the caller's thread) and buffers are the received zmq frames.
class Reply {
 public:
  // `frames` holds header, parent, metadata, content, buffers starting at `header_index`.
  Reply(std::string msg_id, Frames frames, size_t header_index, std::string engine_uuid);
  // A reply made by the client itself (e.g. EngineError for a request stranded on a dead
  // engine): `header`/`parent` are full headers, no buffers.
  static std::shared_ptr<Reply> Make(std::string msg_id, const Json& header, const Json& parent,
                                     const Json& metadata, const Json& content,
                                     std::string engine_uuid);

  // The msg_id of the request this answers (for a coalesced broadcast: the client's id).
  const std::string& msg_id() const { return msg_id_; }
  // The engine that answered ("" when unknown, e.g. hub replies).
  const std::string& engine_uuid() const { return engine_uuid_; }
  bool synthesized() const { return synthesized_; }

  std::string_view header_json() const { return Part(0); }
  std::string_view parent_json() const { return Part(1); }
  std::string_view metadata_json() const { return Part(2); }
  std::string_view content_json() const { return Part(3); }
  // Parsed parts; an empty object when the part is not a JSON object. Thread safe.
  const Json& header() const;
  const Json& metadata() const;
  const Json& content() const;

  std::string msg_type() const;
  // content["status"]: "ok", "error", "aborted" (or "" when missing).
  std::string status() const;
  // OK for status "ok"; kRemoteError "ename: evalue" for errors; kCancelled for aborted.
  Status error() const;

  size_t num_buffers() const { return frames_.size() - header_index_ - 4; }
  const zmq::message_t& buffer(size_t i) const { return frames_[header_index_ + 4 + i]; }

 private:
  std::string_view Part(size_t i) const;
  const Json& Parsed(size_t i) const;

  std::string msg_id_;
  Frames frames_;
  size_t header_index_;
  std::string engine_uuid_;
  bool synthesized_ = false;
  mutable std::once_flag parsed_once_[4];
  mutable Json parsed_[4];
};
using ReplyPtr = std::shared_ptr<const Reply>;

// An iopub data_message (ipyparallel.datapub.publish_data): content plus serialized buffers.
struct DataMessage {
  Json content;
  Frames buffers;
};

// What an engine published on iopub for one request. Filled by the I/O thread; read from
// any thread. Complete when idle() (the engine's `status: idle` for the request, or the
// client gave up on it: engine gone, aborted, controller-made error, Close()).
class Outputs {
 public:
  std::string stdout_text() const;
  std::string stderr_text() const;
  std::string execute_input() const;       // the code, "" when none
  Json execute_result() const;             // content, null when none
  Json error() const;                      // content, null when none
  std::vector<Json> display_data() const;  // contents, in order
  std::vector<std::shared_ptr<const DataMessage>> data() const;
  bool idle() const;
  // Blocks up to `timeout` for idle(); returns idle().
  bool WaitIdle(Micros timeout) const;

  // --- for the client's I/O thread ---
  void AppendStream(std::string_view name, std::string_view text);
  void Store(std::string_view msg_type, Json content, Frames buffers = {});
  void MarkIdle();

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string stdout_, stderr_, execute_input_;
  Json execute_result_, error_;
  std::vector<Json> display_data_;
  std::vector<std::shared_ptr<const DataMessage>> data_;
  bool idle_ = false;
};
using OutputsPtr = std::shared_ptr<Outputs>;

// The handle of one sent request (or of one engine's part of a broadcast).
struct Submitted {
  std::string msg_id;
  int engine_id = -1;  // the target engine (mux, control, broadcast); -1 otherwise
  Future<ReplyPtr> reply;
  OutputsPtr outputs;  // null for control requests and hub queries

  // Waits up to `timeout` for the reply and, when there are outputs, their idle status.
  // OK when both arrived (whatever the reply says); kTimedOut otherwise; the reply's
  // Status when the client failed it (kCancelled, kUnavailable, kIOError).
  Status Wait(Micros timeout) const;
};

// A request to send. Content, metadata and buffers are the caller's (moved in).
struct Request {
  Channel channel = Channel::kMux;
  std::string msg_type;  // apply_request, execute_request, abort_request, ...
  Json content = Json::object();
  Json metadata = Json::object();  // sent as given (task: after/follow/timeout/targets/...)
  Frames buffers;
  // Engine ids: mux and control send one message per target; broadcast sends one message
  // whose metadata.targets lists them. Ignored for task and query.
  std::vector<int> targets;
  bool coalescing = false;  // broadcast: one reply with every engine's buffers
};

struct ConnectOptions {
  std::string connection_file;  // explicit path to ipcontroller[-id]-client.json, or:
  std::string profile;          // default "default"
  std::string profile_dir;      // else $IPP_PROFILE_DIR, else <ipython_dir>/profile_<profile>
  std::string ipython_dir;      // else $IPYTHONDIR, else ~/.ipython
  std::string cluster_id;       // else $IPP_CLUSTER_ID
  double timeout_s = 10.0;      // wait for the file to appear and for connection_reply
  std::string username;         // header username; default $USER or "username"
};

class Client {
 public:
  // Reads the connection file (waiting up to timeout_s for it), connects every socket
  // (CurveZMQ when the file has curve_serverkey), starts the I/O thread and fetches the
  // engine table. kNotFound: no file in time; kInvalidArgument: bad file; kTimedOut: the
  // controller did not answer connection_request in time.
  static Result<std::unique_ptr<Client>> Connect(const ConnectOptions& options);
  ~Client();  // Close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Stops the I/O thread and closes the sockets. Pending futures complete with kCancelled
  // and pending outputs are marked idle. Later requests fail with kCancelled. Idempotent.
  void Close();

  const std::string& session() const;
  // Registered engines, sorted by id.
  std::vector<EngineInfo> engines() const;
  std::vector<int> ids() const;
  // Waits until at least `n` engines are registered. kTimedOut otherwise.
  Status WaitForEngines(size_t n, Micros timeout) const;
  // Requests sent and not yet answered (or whose outputs are not yet complete), as of the
  // I/O thread's last wake-up: it may lag a completed future by a moment.
  size_t outstanding() const;

  // Sends one request. kNotFound for an unknown engine id, kInvalidArgument for a request
  // without targets where they are needed, kCancelled after Close(). Never blocks on the
  // network.
  Result<std::vector<Submitted>> Send(Request request);

  // --- conveniences over Send ---
  Result<std::vector<Submitted>> Execute(const std::vector<int>& targets, std::string code,
                                         bool silent = false);
  Result<std::vector<Submitted>> ApplyDirect(const std::vector<int>& targets, Frames buffers,
                                             Json metadata = Json::object());
  Result<Submitted> ApplyBalanced(Frames buffers, Json metadata = Json::object());
  Result<std::vector<Submitted>> Abort(const std::vector<int>& targets,
                                       std::vector<std::string> msg_ids = {});
  Result<std::vector<Submitted>> ClearNamespace(const std::vector<int>& targets);
  Result<std::vector<Submitted>> SignalEngines(const std::vector<int>& targets, int sig);
  Result<std::vector<Submitted>> ShutdownEngines(const std::vector<int>& targets);
  // Hub queries: queue_request, result_request, history_request, db_request,
  // purge_request, resubmit_request, shutdown_request (the reply's content is the answer).
  Result<Submitted> HubQuery(std::string msg_type, Json content = Json::object());

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal
