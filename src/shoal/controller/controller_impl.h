// Controller::Impl, shared by the files that implement the controller (controller.cc:
// start-up, the loop, registration and queries; relays.cc: mux, control, task, iopub;
// broadcast.cc: fan-out and coalescing). Internal: include only from those files.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shoal/controller/controller.h"
#include "shoal/controller/engine_registry.h"
#include "shoal/controller/heart_monitor.h"
#include "shoal/controller/hub.h"
#include "shoal/controller/sockets.h"
#include "shoal/controller/task_scheduler.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/message.h"
#include "shoal/wire/msg_types.gen.h"

namespace shoal::controller {

namespace msg = wire::msg;
using wire::Frames;
using wire::Message;

// A task request as the scheduler carries it: the client's routing id and its frames
// (identities stripped: frames start at the delimiter).
struct RawTask : TaskPayload {
  std::string client_rid;  // "" for resubmissions made by the hub itself
  Message msg;
};

// "apply_request" -> "apply_reply".
inline std::string ReplyType(const std::string& request_type) {
  const std::string suffix = "_request";
  if (request_type.size() > suffix.size() &&
      request_type.compare(request_type.size() - suffix.size(), suffix.size(), suffix) == 0)
    return request_type.substr(0, request_type.size() - suffix.size()) + "_reply";
  return request_type + "_reply";
}

inline zmq::message_t Bytes(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

class Controller::Impl : public TaskSink {
 public:
  Impl(ControllerOptions options, const Clock& clock)
      : opts_(std::move(options)), clock_(clock), heart_(opts_.max_heartmonitor_misses) {}

  Status Start();
  Status Run();
  const wire::ProfileDir& profile() const { return profile_; }

  // TaskSink
  void SendToEngine(const std::string& engine_uuid, const Task& task) override;
  void DeliverReply(const Task& task, const std::string& engine_uuid) override;
  void DeliverFailure(const Task& task, TaskFailure why, const std::string& engine_uuid) override;

 private:
  Status OpenStore();
  Status LoadReusedFiles(wire::ConnectionInfo& client, wire::ConnectionInfo& engine);
  Status WriteConnectionFiles();
  void RemoveConnectionFiles();
  void SaveEngineState();   // marks the state file for writing
  void WriteEngineState();  // writes it now

  // Hands a message to its channel's handler. The last line of defence for peer input: an
  // exception that escapes a handler (a bug, or memory exhaustion) drops that one message
  // with an error in the log instead of ending the controller.
  void Dispatch(Channel ch, Frames&& frames);
  // Sends `frames` (first frame: the engine uuid) out of an engine-facing ROUTER, or parks
  // them in the engine's outbox when it is not reachable yet.
  void SendToEngineSocket(zmq::socket_t& sock, const std::string& engine_uuid, Frames& frames);
  void FlushOutbox();
  // Mux and control: [client_rid, engine_uuid, D, ...] <-> [engine_uuid, client_rid, D, ...].
  struct DirectRelay;
  void RelayToEngine(const DirectRelay& relay, Frames&& frames);
  void FinishRelayToClient(const DirectRelay& relay, Message& rep);
  void FinishTaskReply(Message& rep);
  void FinishBroadcastReply(Message& rep);
  void RelayToClient(const DirectRelay& relay, Frames&& frames);
  // One handler per readable socket.
  void OnQuery(Frames&& frames);
  void OnMuxFromClient(Frames&& frames);
  void OnMuxFromEngine(Frames&& frames);
  void OnControlFromClient(Frames&& frames);
  void OnControlFromEngine(Frames&& frames);
  void OnTaskFromClient(Frames&& frames);
  void OnTaskFromEngine(Frames&& frames);
  void OnBroadcastFromClient(Frames&& frames);
  void OnBroadcastFromEngine(Frames&& frames);
  void OnIopub(Frames&& frames);
  void OnPong(Frames&& frames);
  void CompleteRegistration(const std::string& uuid);
  void ReleaseHeldNotes();
  void ScheduleRepings(Micros now);
  void OnTimers();

  // Registration and liveness.
  void HandleRegistration(const Message& req);
  void HandleUnregistration(const Message& req);
  // `reason` (from the engine's watchdog: "exited with code 3", ...) means the process is
  // known to be gone: its tasks fail at once, with the reason in the EngineError.
  void EngineGone(const EngineInfo& info, const std::string& why, const std::string& reason = "");
  void Beat();
  // Hub queries that need sockets.
  void HandleResubmit(const Message& req);
  void HandleShutdown(const Message& req);

  // Sends a controller-made message.
  void SendReply(zmq::socket_t& sock, const std::vector<std::string>& idents,
                 std::string_view msg_type, const Json& parent, const Json& content,
                 Frames buffers = {}, const Json& metadata = Json::object());
  void Notify(std::string_view msg_type, const Json& content, const Json& parent = Json::object());
  // Replies with an error to a request that cannot be routed (unknown engine).
  void RejectUnroutable(zmq::socket_t& sock, const std::string& client_rid, const Message& req,
                        const std::string& why);
  bool DecodeOrLog(Frames&& frames, const char* channel, const wire::DecodeOptions& opts,
                   Message& out);
  Json EnginesJson() const;

  ControllerOptions opts_;
  const Clock& clock_;
  wire::ProfileDir profile_;
  wire::ConnectionInfo client_info_, engine_info_;
  std::string session_ = wire::NewSessionId();
  std::string username_ = "username";
  std::unique_ptr<wire::Signer> signer_;
  wire::DecodeOptions relay_opts_, query_opts_;

  std::unique_ptr<store::RecordStore> store_;
  EngineRegistry registry_;
  HeartMonitor heart_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<TaskScheduler> scheduler_;
  std::unique_ptr<ControllerSockets> sk_;

  Micros started_ = 0;
  Micros next_beat_ = 0;
  std::set<Micros> repings_;  // when to repeat the current ping for registering engines
  struct HeldNote {
    std::string msg_type;
    Json content, parent;
  };
  std::vector<HeldNote> held_notes_;  // registrations waiting for clients' SUBs to join
  Micros notes_held_until_ = 0;
  static constexpr Micros kNotificationHold = 500 * kMicrosPerMilli;
  static constexpr Micros kRepingSpacing = 10 * kMicrosPerMilli;
  Micros next_flush_ = 0;
  Micros next_state_write_ = 0;
  // Messages for engines whose sockets are not connected yet (e.g. just after --restore),
  // in order, per engine uuid. Retried every loop turn; dropped when the engine leaves.
  struct Parked {
    zmq::socket_t* sock;
    Frames frames;
  };
  std::map<std::string, std::deque<Parked>> outbox_;
  bool state_dirty_ = false;
  std::optional<Micros> shutdown_at_;
  std::deque<std::pair<Micros, EngineInfo>> stranded_mux_;
  std::unordered_map<std::string, std::string> death_reasons_;  // engine uuid -> reason

  // Direct (mux) requests an engine has not answered yet, so that a death reported by the
  // engine's watchdog can answer them with the reason before the unregistration
  // notification (on which stock clients fail them with a text of their own).
  struct InFlight {
    std::string engine_uuid, client_rid, msg_type, header;
  };
  std::unordered_map<std::string, InFlight> mux_in_flight_;  // msg_id -> request
  void FailInFlight(const EngineInfo& info, const std::string& reason);

  // Replies wait until the outputs their engine published before them have been relayed:
  // shoal-engine puts that count in the reply's metadata ("shoal_outputs"). Output and reply
  // travel on different sockets, so without this a client can see a reply before the
  // request's last output. A reply waits at most kOutputWait.
  static constexpr Micros kOutputWait = 100 * kMicrosPerMilli;
  struct ParkedReply {
    Micros deadline;
    size_t expected;
    std::shared_ptr<Message> reply;
    std::function<void(Message&)> resume;
  };
  std::unordered_map<std::string, ParkedReply> parked_;   // reply parent msg_id -> reply
  std::unordered_map<std::string, size_t> outputs_seen_;  // request msg_id -> outputs relayed
  std::deque<std::string> outputs_order_;                 // bounds outputs_seen_
  // True when `rep` was parked; `resume` then runs with it once its outputs are through.
  bool ParkUntilOutputs(Message& rep, std::function<void(Message&)> resume);
  void CountOutput(const std::string& request_id);
  void ReleaseParked(Micros now);
  Message* current_reply_ = nullptr;      // the engine reply OnEngineReply is handling
  std::string scheduler_failure_reason_;  // evalue for the next DeliverFailure, if any

  // Coalescing broadcasts waiting for replies, by original msg_id.
  struct Coalescing {
    std::string client_rid;
    std::vector<std::pair<std::string, int>> expected;     // (uuid, id) of targets
    std::vector<std::pair<std::string, Message>> replies;  // (uuid, reply)
  };
  std::map<std::string, Coalescing> coalescing_;
  void FinishCoalescing(const std::string& orig_id, Coalescing& c);
};

}  // namespace shoal::controller
