#include "shoal/controller/controller.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>

#include "shoal/common/log.h"
#include "shoal/controller/engine_registry.h"
#include "shoal/controller/heart_monitor.h"
#include "shoal/controller/hub.h"
#include "shoal/controller/sockets.h"
#include "shoal/controller/task_scheduler.h"
#include "shoal/store/memory_store.h"
#include "shoal/store/no_store.h"
#include "shoal/store/sqlite_store.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/iso_date.h"
#include "shoal/wire/json_get.h"
#include "shoal/wire/message.h"
#include "shoal/wire/msg_types.gen.h"

namespace shoal::controller {
namespace {

std::atomic<bool> g_stop{false};
namespace msg = wire::msg;

using wire::Frames;
using wire::Message;

// A task request as the scheduler carries it: the client's routing id and its frames
// (identities stripped: frames start at the delimiter).
struct RawTask : TaskPayload {
  std::string client_rid;  // "" for resubmissions made by the hub itself
  Message msg;
};

std::string ReplyType(const std::string& request_type) {
  const std::string suffix = "_request";
  if (request_type.size() > suffix.size() &&
      request_type.compare(request_type.size() - suffix.size(), suffix.size(), suffix) == 0)
    return request_type.substr(0, request_type.size() - suffix.size()) + "_reply";
  return request_type + "_reply";
}

zmq::message_t Bytes(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

}  // namespace

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
  void OnTimers();

  // Registration and liveness.
  void HandleRegistration(const Message& req);
  void HandleUnregistration(const Message& req);
  void EngineGone(const EngineInfo& info, const std::string& why);
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
  Message* current_reply_ = nullptr;  // the engine reply OnEngineReply is handling
  std::string scheduler_failure_reason_;  // evalue for the next DeliverFailure, if any

  // Coalescing broadcasts waiting for replies, by original msg_id.
  struct Coalescing {
    std::string client_rid;
    std::vector<std::pair<std::string, int>> expected;  // (uuid, id) of targets
    std::vector<std::pair<std::string, Message>> replies;  // (uuid, reply)
  };
  std::map<std::string, Coalescing> coalescing_;
  void FinishCoalescing(const std::string& orig_id, Coalescing& c);
};

// ---------------------------------------------------------------------------------------
// Start-up and shutdown

Status Controller::Impl::OpenStore() {
  switch (opts_.db) {
    case DbBackend::kMemory: {
      store::MemoryStoreOptions mo;
      mo.record_limit = opts_.record_limit;
      mo.size_limit = opts_.size_limit;
      mo.cull_fraction = opts_.cull_fraction;
      store_ = std::make_unique<store::MemoryStore>(mo);
      return Status::Ok();
    }
    case DbBackend::kSqlite: {
      std::string dir = opts_.sqlite_location.empty() ? profile_.path : opts_.sqlite_location;
      auto s = store::SqliteStore::Open(dir + "/" + opts_.sqlite_filename, opts_.sqlite_table);
      if (!s.ok()) return s.status();
      store_ = std::move(s).value();
      return Status::Ok();
    }
    case DbBackend::kNone:
      store_ = std::make_unique<store::NoStore>();
      return Status::Ok();
  }
  return Status::Internal("unknown db backend");
}

Status Controller::Impl::LoadReusedFiles(wire::ConnectionInfo& client,
                                         wire::ConnectionInfo& engine) {
  auto c = wire::ReadConnectionFile(profile_.client_file());
  auto e = wire::ReadConnectionFile(profile_.engine_file());
  if (!c.ok() || !e.ok()) return Status::NotFound("no connection files to reuse");
  client = *c;
  engine = *e;
  SHOAL_LOG(Info) << "reusing connection files in " << profile_.security_dir();
  return Status::Ok();
}

Status Controller::Impl::Start() {
  log::SetLevel(opts_.log_level);
  for (const auto& w : opts_.warnings) SHOAL_LOG(Warn) << w;
  profile_ = wire::ResolveProfileDir(opts_.profile);
  SHOAL_RETURN_NOT_OK(wire::EnsureProfileDir(profile_));
  if (const char* u = std::getenv("USER"); u && *u) username_ = u;

  auto scheme = ParseScheme(opts_.scheme);
  if (!scheme.ok()) return scheme.status();

  wire::ConnectionInfo reused_client, reused_engine;
  bool reuse = opts_.reuse_files && LoadReusedFiles(reused_client, reused_engine).ok();

  std::string key;
  if (reuse) {
    key = reused_client.key;
  } else if (opts_.session_key) {
    key = *opts_.session_key;
  } else if (!opts_.enable_curve) {
    key = wire::NewSessionId();  // Curve authenticates by itself; otherwise sign.
  }
  SHOAL_ASSIGN_OR_RETURN(signer_, wire::Signer::Create(key, opts_.signature_scheme));
  relay_opts_.parse_parent = false;
  relay_opts_.max_bytes = opts_.max_message_bytes;
  query_opts_.parse_content = true;
  query_opts_.max_bytes = opts_.max_message_bytes;

  SHOAL_RETURN_NOT_OK(OpenStore());
  hub_ = std::make_unique<Hub>(*store_, registry_, clock_);
  TaskScheduler::Options so;
  so.scheme = *scheme;
  so.hwm = opts_.hwm;
  so.seed = static_cast<uint64_t>(clock_.WallMicros());
  scheduler_ = std::make_unique<TaskScheduler>(so, clock_, *this);

  SocketPlan plan;
  plan.transport = opts_.transport;
  plan.engine_ip = opts_.engine_ip.empty() ? opts_.ip : opts_.engine_ip;
  plan.client_ip = opts_.client_ip.empty() ? opts_.ip : opts_.client_ip;
  plan.regport = opts_.regport;
  plan.ports = opts_.ports;
  plan.engine_ports = opts_.engine_ports;
  plan.client_ports = opts_.client_ports;
  plan.broadcast_leaves = 1 << opts_.broadcast_depth;
  plan.enable_curve = opts_.enable_curve;
  plan.curve_secretkey = opts_.curve_secretkey;
  plan.curve_publickey = opts_.curve_publickey;
  if (reuse) {
    plan.reuse_client = reused_client.ports;
    plan.reuse_engine = reused_engine.ports;
    plan.reuse = true;
  }
  SHOAL_ASSIGN_OR_RETURN(sk_, ControllerSockets::Bind(plan));

  std::string location = opts_.location;
  if (location.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    location = host;
  }
  for (auto* info : {&client_info_, &engine_info_}) {
    info->key = key;
    info->signature_scheme = opts_.signature_scheme;
    info->location = location;
    info->task_scheme = SchemeName(*scheme);
    if (opts_.enable_curve) info->curve_serverkey = sk_->curve_publickey();
  }
  client_info_.ssh = opts_.ssh;
  engine_info_.ssh = opts_.engine_ssh;
  client_info_.interface = sk_->client_interface();
  engine_info_.interface = sk_->engine_interface();
  client_info_.ports = sk_->client_ports();
  engine_info_.ports = sk_->engine_ports();

  if (opts_.restore_engines) {
    auto state = wire::ReadJsonFile(profile_.engines_state_file());
    if (state.ok() && registry_.Restore(*state).ok()) {
      for (const auto& [id, info] : registry_.engines()) {
        scheduler_->AddEngine(info.uuid);
        heart_.Track(info.uuid);
        SHOAL_LOG(Info) << "restored engine " << id << " (" << info.uuid << ")";
      }
    } else {
      SHOAL_LOG(Warn) << "--restore: no usable engine state in " << profile_.engines_state_file();
    }
  }

  SHOAL_RETURN_NOT_OK(WriteConnectionFiles());
  started_ = clock_.MonotonicMicros();
  next_beat_ = started_;
  SHOAL_LOG(Info) << "shoal-controller ready: clients " << profile_.client_file()
                  << ", engines " << profile_.engine_file() << " (scheme " << opts_.scheme
                  << ", hwm " << opts_.hwm << ", ping " << opts_.ping_ms << " ms)";
  return Status::Ok();
}

Status Controller::Impl::WriteConnectionFiles() {
  SHOAL_RETURN_NOT_OK(wire::WriteJsonFile(profile_.engine_file(), wire::EngineFileJson(engine_info_)));
  return wire::WriteJsonFile(profile_.client_file(), wire::ClientFileJson(client_info_));
}

void Controller::Impl::RemoveConnectionFiles() {
  if (opts_.reuse_files) return;
  ::unlink(profile_.client_file().c_str());
  ::unlink(profile_.engine_file().c_str());
}

void Controller::Impl::SaveEngineState() {
  // Written from the timer, at most every 100 ms: a registration storm of a thousand engines
  // must not cost a thousand fsyncs.
  state_dirty_ = true;
}

void Controller::Impl::WriteEngineState() {
  state_dirty_ = false;
  Status st = wire::WriteJsonFile(profile_.engines_state_file(), registry_.StateJson());
  if (!st.ok()) SHOAL_LOG(Warn) << "cannot save engine state: " << st.ToString();
}

Status Controller::Impl::Run() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    Micros now = clock_.MonotonicMicros();
    if (shutdown_at_ && now >= *shutdown_at_) break;
    Micros next = next_beat_;
    if (auto d = scheduler_->NextDeadline()) next = std::min(next, *d);
    if (auto d = registry_.NextStallDeadline()) next = std::min(next, *d);
    if (!stranded_mux_.empty()) next = std::min(next, stranded_mux_.front().first);
    if (shutdown_at_) next = std::min(next, *shutdown_at_);
    if (state_dirty_) next = std::min(next, next_state_write_);
    if (!outbox_.empty()) next = std::min(next, now + 20 * kMicrosPerMilli);  // retry soon
    long timeout_ms = std::clamp<long>(static_cast<long>((next - now + 999) / 1000), 0, 200);
    sk_->Poll(timeout_ms, [this](Channel ch, Frames&& frames) { Dispatch(ch, std::move(frames)); });
    OnTimers();
  }
  SHOAL_LOG(Info) << "shoal-controller shutting down";
  if (state_dirty_) WriteEngineState();
  RemoveConnectionFiles();
  sk_.reset();
  if (Status st = store_->Flush(); !st.ok())
    SHOAL_LOG(Error) << "record store at shutdown: " << st.ToString();
  store_.reset();
  return Status::Ok();
}

void Controller::Impl::Dispatch(Channel ch, Frames&& frames) {
  try {
    switch (ch) {
      case Channel::kQuery: OnQuery(std::move(frames)); break;
      case Channel::kMuxClient: OnMuxFromClient(std::move(frames)); break;
      case Channel::kMuxEngine: OnMuxFromEngine(std::move(frames)); break;
      case Channel::kControlClient: OnControlFromClient(std::move(frames)); break;
      case Channel::kControlEngine: OnControlFromEngine(std::move(frames)); break;
      case Channel::kTaskClient: OnTaskFromClient(std::move(frames)); break;
      case Channel::kTaskEngine: OnTaskFromEngine(std::move(frames)); break;
      case Channel::kBroadcastClient: OnBroadcastFromClient(std::move(frames)); break;
      case Channel::kBroadcastEngine: OnBroadcastFromEngine(std::move(frames)); break;
      case Channel::kIopubEngine: OnIopub(std::move(frames)); break;
      case Channel::kPong: OnPong(std::move(frames)); break;
    }
  } catch (const std::exception& e) {
    current_reply_ = nullptr;
    SHOAL_LOG(Error) << "internal error handling a message on channel " << static_cast<int>(ch)
                     << " (message dropped): " << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

bool Controller::Impl::DecodeOrLog(Frames&& frames, const char* channel,
                                   const wire::DecodeOptions& opts, Message& out) {
  Status st = wire::Decode(std::move(frames), signer_.get(), opts, out);
  if (st.ok()) return true;
  SHOAL_LOG(Warn) << "dropped message on " << channel << ": " << st.message();
  return false;
}

void Controller::Impl::SendReply(zmq::socket_t& sock, const std::vector<std::string>& idents,
                                 std::string_view msg_type, const Json& parent,
                                 const Json& content, Frames buffers, const Json& metadata) {
  Json header = wire::MakeHeader(msg_type, session_, username_);
  Frames f = wire::Encode(idents, header, parent, metadata, content, *signer_, std::move(buffers));
  ControllerSockets::SendFrames(sock, f);
}

void Controller::Impl::Notify(std::string_view msg_type, const Json& content,
                              const Json& parent) {
  SendReply(sk_->notification(), {}, msg_type, parent, content);
}

Json Controller::Impl::EnginesJson() const {
  Json engines = Json::object();
  for (const auto& [id, info] : registry_.engines()) engines[std::to_string(id)] = info.uuid;
  return engines;
}

void Controller::Impl::RejectUnroutable(zmq::socket_t& sock, const std::string& client_rid,
                                        const Message& req, const std::string& why) {
  SHOAL_LOG(Warn) << why;
  SendReply(sock, {client_rid}, ReplyType(req.msg_type()), req.header,
            ErrorContent("EngineError", why));
}

// ---------------------------------------------------------------------------------------
// Registration / query socket

void Controller::Impl::OnQuery(Frames&& frames) {
  Message req;
  if (!DecodeOrLog(std::move(frames), "registration", query_opts_, req)) return;
  if (req.num_identities() < 1) return;
  std::string peer(req.identity(0));
  std::string type = req.msg_type();
  SHOAL_LOG(Debug) << "query " << type << " from client";
  if (type == msg::kConnectionRequest) {
    SendReply(sk_->query(), {peer}, msg::kConnectionReply, req.header,
              {{"status", "ok"}, {"engines", EnginesJson()}});
  } else if (type == msg::kRegistrationRequest) {
    HandleRegistration(req);
  } else if (type == msg::kUnregistrationRequest) {
    HandleUnregistration(req);
  } else if (type == msg::kResubmitRequest) {
    HandleResubmit(req);
  } else if (type == msg::kShutdownRequest) {
    HandleShutdown(req);
  } else if (type == msg::kBecomeDaskRequest) {
    SendReply(sk_->query(), {peer}, msg::kBecomeDaskReply, req.header,
              ErrorContent("NotImplementedError",
                           "shoal-controller has no Python inside: become_dask is unsupported"));
  } else if (type == msg::kStopDistributedRequest) {
    SendReply(sk_->query(), {peer}, msg::kStopDistributedReply, req.header, {{"status", "ok"}});
  } else {
    QueryReply r = hub_->HandleQuery(type, req.content);
    SendReply(sk_->query(), {peer}, r.msg_type, req.header, r.content, std::move(r.buffers));
  }
}

void Controller::Impl::HandleRegistration(const Message& req) {
  std::string peer(req.identity(0));
  const Json& c = req.content;
  if (!c.contains("uuid") || !c["uuid"].is_string()) {
    SendReply(sk_->query(), {peer}, msg::kRegistrationReply, Json::object(),
              ErrorContent("KeyError", "registration_request lacks a uuid"));
    return;
  }
  std::string uuid = c["uuid"].get<std::string>();
  std::optional<int> requested;
  if (c.contains("id") && c["id"].is_number_integer()) requested = c["id"].get<int>();
  Micros deadline =
      clock_.MonotonicMicros() + opts_.RegistrationTimeoutSeconds() * kMicrosPerSecond;
  auto id = registry_.BeginRegistration(uuid, requested, deadline);
  if (!id.ok()) {
    SHOAL_LOG(Error) << "registration of " << uuid << " refused: " << id.status().message();
    SendReply(sk_->query(), {peer}, msg::kRegistrationReply, Json::object(),
              ErrorContent("KeyError", id.status().message()));
    return;
  }
  SHOAL_LOG(Info) << "engine " << *id << " registering (" << uuid << ")";
  // IPython Parallel sends this reply without a parent header.
  SendReply(sk_->query(), {peer}, msg::kRegistrationReply, Json::object(),
            {{"id", *id},
             {"status", "ok"},
             {"hb_period", opts_.ping_ms},
             {"connection_info", wire::RegistrationConnectionInfo(engine_info_)}});
}

void Controller::Impl::HandleUnregistration(const Message& req) {
  const Json& c = req.content;
  if (!c.contains("id") || !c["id"].is_number_integer()) return;
  int id = c["id"].get<int>();
  if (const EngineInfo* e = registry_.FindById(id)) {
    EngineGone(*e, "unregistered");
    return;
  }
  bool was_registered = false;
  if (auto info = registry_.Unregister(id, &was_registered))
    SHOAL_LOG(Info) << "engine " << id << " cancelled its registration";
}

void Controller::Impl::EngineGone(const EngineInfo& dead, const std::string& why) {
  EngineInfo info = dead;  // `dead` may point into the registry
  if (!registry_.Unregister(info.id)) return;
  SHOAL_LOG(Info) << "engine " << info.id << " (" << info.uuid << ") " << why;
  heart_.Forget(info.uuid);
  Notify(msg::kUnregistrationNotification, {{"id", info.id}, {"uuid", info.uuid}});
  SaveEngineState();
  scheduler_->RemoveEngine(info.uuid);
  stranded_mux_.emplace_back(
      clock_.MonotonicMicros() + opts_.RegistrationTimeoutSeconds() * kMicrosPerSecond, info);
  // Coalescing broadcasts must not wait for an engine that will never answer.
  for (auto it = coalescing_.begin(); it != coalescing_.end();) {
    auto& c = it->second;
    auto pos = std::find_if(c.expected.begin(), c.expected.end(),
                            [&](const auto& t) { return t.first == info.uuid; });
    bool answered = std::any_of(c.replies.begin(), c.replies.end(),
                                [&](const auto& r) { return r.first == info.uuid; });
    if (pos != c.expected.end() && !answered) {
      c.expected.erase(pos);
      if (c.replies.size() >= c.expected.size()) {
        std::string orig = it->first;
        Coalescing done = std::move(c);
        it = coalescing_.erase(it);
        FinishCoalescing(orig, done);
        continue;
      }
    }
    ++it;
  }
}

void Controller::Impl::HandleShutdown(const Message& req) {
  std::string peer(req.identity(0));
  SendReply(sk_->query(), {peer}, msg::kShutdownReply, req.header, {{"status", "ok"}});
  Notify(msg::kShutdownNotification, {{"status", "ok"}}, req.header);
  SHOAL_LOG(Info) << "hub shutdown requested; exiting in 1 s";
  shutdown_at_ = clock_.MonotonicMicros() + kMicrosPerSecond;
}

void Controller::Impl::HandleResubmit(const Message& req) {
  std::string peer(req.identity(0));
  std::vector<std::string> ids;
  if (req.content.contains("msg_ids") && req.content["msg_ids"].is_array())
    for (const auto& m : req.content["msg_ids"])
      if (m.is_string()) ids.push_back(m.get<std::string>());
  std::vector<store::Record> records;
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    auto rec = store_->Get(id);
    if (rec.ok() && rec->fields.contains("header") && rec->fields["header"].is_object()) {
      records.push_back(std::move(rec).value());
    } else {
      missing.push_back(id);
    }
  }
  if (!missing.empty()) {
    SendReply(sk_->query(), {peer}, msg::kResubmitReply, req.header,
              ErrorContent("KeyError", "No such msg(s): " + Json(missing).dump()));
    return;
  }
  Json resubmitted = Json::object();
  for (auto& rec : records) {
    std::string old_id = rec.fields["msg_id"].get<std::string>();
    Json header = rec.fields["header"];
    std::string new_id = wire::NewMsgId(session_);
    header["msg_id"] = new_id;
    header["date"] = wire::FormatIsoDate(clock_.WallMicros());
    Json content = rec.fields.contains("content") ? rec.fields["content"] : Json::object();
    if (!content.is_object()) content = Json::object();
    Frames bufs;
    for (const auto& b : rec.buffers) bufs.push_back(FrameFromBlob(b));
    Frames frames =
        wire::Encode({}, header, header, Json::object(), content, *signer_, std::move(bufs));
    auto task = std::make_unique<RawTask>();
    Status st = wire::Decode(std::move(frames), nullptr, relay_opts_, task->msg);
    if (!st.ok()) continue;
    hub_->OnResubmitted(old_id, new_id, header, content, rec.buffers);
    resubmitted[old_id] = new_id;
    auto spec = ParseTaskSpec(new_id, Json::object());
    scheduler_->Submit(std::move(spec).value(), std::move(task));
  }
  SendReply(sk_->query(), {peer}, msg::kResubmitReply, req.header,
            {{"status", "ok"}, {"resubmitted", resubmitted}});
}

// ---------------------------------------------------------------------------------------
// MUX and control relays: [client_rid, engine_uuid, D, ...] <-> [engine_uuid, client_rid, D, ...]

void Controller::Impl::SendToEngineSocket(zmq::socket_t& sock, const std::string& engine_uuid,
                                          Frames& frames) {
  auto it = outbox_.find(engine_uuid);
  if (it == outbox_.end() && ControllerSockets::TrySendToPeer(sock, frames)) return;
  SHOAL_LOG(Debug) << "engine " << engine_uuid << " not connected yet; message parked";
  outbox_[engine_uuid].push_back({&sock, std::move(frames)});
}

void Controller::Impl::FlushOutbox() {
  for (auto it = outbox_.begin(); it != outbox_.end();) {
    if (!registry_.FindByUuid(it->first)) {
      SHOAL_LOG(Warn) << "dropping " << it->second.size() << " messages for engine "
                      << it->first << ", which left before it connected";
      it = outbox_.erase(it);
      continue;
    }
    auto& queue = it->second;
    while (!queue.empty() && ControllerSockets::TrySendToPeer(*queue.front().sock,
                                                              queue.front().frames))
      queue.pop_front();
    it = queue.empty() ? outbox_.erase(it) : std::next(it);
  }
}

// A direct relay (mux or control). `hub` says whether the Hub records what passes.
struct Controller::Impl::DirectRelay {
  const char* name;
  zmq::socket_t& client_side;
  zmq::socket_t& engine_side;
  bool hub;
};

void Controller::Impl::RelayToEngine(const DirectRelay& relay, Frames&& frames) {
  Message req;
  wire::DecodeOptions opts = relay_opts_;
  opts.parse_metadata = relay.hub;
  if (!DecodeOrLog(std::move(frames), relay.name, opts, req)) return;
  if (req.num_identities() < 2) return;
  std::string target(req.identity(1));
  if (!registry_.FindByUuid(target)) {
    RejectUnroutable(relay.client_side, std::string(req.identity(0)), req,
                     "no engine with uuid '" + target + "'");
    return;
  }
  if (relay.hub) hub_->OnRequest(req, "mux", target);
  std::swap(req.frames[0], req.frames[1]);  // [engine_uuid, client_rid, D, ...]
  SendToEngineSocket(relay.engine_side, target, req.frames);
}

void Controller::Impl::RelayToClient(const DirectRelay& relay, Frames&& frames) {
  Message rep;
  wire::DecodeOptions opts = relay_opts_;
  opts.parse_parent = relay.hub;
  opts.parse_metadata = relay.hub;
  if (!DecodeOrLog(std::move(frames), relay.name, opts, rep)) return;
  if (rep.num_identities() < 2) return;
  if (relay.hub) hub_->OnResult(rep, std::string(rep.identity(0)));
  std::swap(rep.frames[0], rep.frames[1]);  // [client_rid, engine_uuid, D, ...]
  ControllerSockets::SendFrames(relay.client_side, rep.frames);
}

void Controller::Impl::OnMuxFromClient(Frames&& frames) {
  RelayToEngine({"mux", sk_->mux_client(), sk_->mux_engine(), true}, std::move(frames));
}
void Controller::Impl::OnMuxFromEngine(Frames&& frames) {
  RelayToClient({"mux (engine side)", sk_->mux_client(), sk_->mux_engine(), true},
                std::move(frames));
}
void Controller::Impl::OnControlFromClient(Frames&& frames) {
  RelayToEngine({"control", sk_->control_client(), sk_->control_engine(), false},
                std::move(frames));
}
void Controller::Impl::OnControlFromEngine(Frames&& frames) {
  RelayToClient({"control (engine side)", sk_->control_client(), sk_->control_engine(), false},
                std::move(frames));
}

// ---------------------------------------------------------------------------------------
// Task channel

void Controller::Impl::OnTaskFromClient(Frames&& frames) {
  auto task = std::make_unique<RawTask>();
  if (!DecodeOrLog(std::move(frames), "task", relay_opts_, task->msg)) return;
  Message& req = task->msg;
  if (req.num_identities() < 1) return;
  task->client_rid = std::string(req.identity(0));
  std::string msg_id = req.msg_id();
  auto spec = ParseTaskSpec(msg_id, req.metadata);  // before the hub takes the metadata
  hub_->OnRequest(req, "task", "");
  // The scheduler forwards frames from the delimiter on; drop the client's routing id.
  req.frames.erase(req.frames.begin(), req.frames.begin() + static_cast<long>(req.delim));
  req.delim = 0;
  if (!spec.ok()) {
    SHOAL_LOG(Warn) << "task " << msg_id << ": " << spec.status().message();
    Task t;
    t.spec.msg_id = msg_id;
    t.payload = std::move(task);
    scheduler_failure_reason_ = spec.status().message();
    DeliverFailure(t, TaskFailure::kInvalidDependency, "");
    scheduler_failure_reason_.clear();
    return;
  }
  scheduler_->Submit(std::move(spec).value(), std::move(task));
}

void Controller::Impl::SendToEngine(const std::string& engine_uuid, const Task& task) {
  auto& raw = static_cast<RawTask&>(*task.payload);
  Frames out;
  out.reserve(raw.msg.frames.size() + 2);
  out.push_back(Bytes(engine_uuid));
  out.push_back(Bytes(raw.client_rid));
  for (auto& f : raw.msg.frames) out.push_back(wire::ShareFrame(f));
  SendToEngineSocket(sk_->task_engine(), engine_uuid, out);
  hub_->OnTaskAssigned(task.spec.msg_id, engine_uuid);
}

void Controller::Impl::OnTaskFromEngine(Frames&& frames) {
  Message rep;
  wire::DecodeOptions opts = relay_opts_;
  opts.parse_parent = true;
  if (!DecodeOrLog(std::move(frames), "task (engine side)", opts, rep)) return;
  if (rep.num_identities() < 2) return;
  std::string engine_uuid(rep.identity(0));
  const Json& md = rep.metadata;
  bool ok = md.is_object() && wire::GetString(md, "status") == "ok";
  bool deps_met = wire::GetBool(md, "dependencies_met", true);
  current_reply_ = &rep;
  bool known = scheduler_->OnEngineReply(engine_uuid, rep.parent_msg_id(), ok, deps_met);
  current_reply_ = nullptr;
  if (!known) {
    // A late answer from an engine already given up on: keep the result, tell nobody.
    SHOAL_LOG(Info) << "late task reply " << rep.parent_msg_id() << " from " << engine_uuid;
    hub_->OnResult(rep, engine_uuid);
  }
}

void Controller::Impl::DeliverReply(const Task& task, const std::string& engine_uuid) {
  auto& raw = static_cast<RawTask&>(*task.payload);
  Message& rep = *current_reply_;
  hub_->OnResult(rep, engine_uuid);
  if (raw.client_rid.empty()) return;  // a resubmission: the hub keeps the record
  std::swap(rep.frames[0], rep.frames[1]);
  ControllerSockets::SendFrames(sk_->task_client(), rep.frames);
}

void Controller::Impl::DeliverFailure(const Task& task, TaskFailure why,
                                      const std::string& engine_uuid) {
  auto& raw = static_cast<RawTask&>(*task.payload);
  std::string evalue = scheduler_failure_reason_;
  Json metadata = Json::object();
  if (why == TaskFailure::kEngineDied) {
    const std::string id_text = engine_uuid;
    evalue = "Engine '" + id_text + "' died while running task '" + task.spec.msg_id + "'";
    metadata = {{"status", "error"},
                {"engine", engine_uuid},
                {"date", wire::FormatIsoDate(clock_.WallMicros())}};
  }
  Json content = ErrorContent(TaskFailureName(why), evalue);
  Json header = wire::MakeHeader(msg::kApplyReply, session_, username_);
  // The hub took the parsed request header; the reply's parent comes from the frame.
  std::string_view request_header = raw.msg.frame(wire::kHeaderOffset);
  Json parent;
  if (!wire::ParseJsonObject(request_header, "header", parent).ok()) parent = Json::object();
  Frames f = wire::Encode({}, header, parent, metadata, content, *signer_);
  Message rep;
  Status st = wire::Decode(std::move(f), nullptr, {.parse_content = true}, rep);
  if (st.ok()) hub_->OnResult(rep, engine_uuid);
  if (raw.client_rid.empty()) return;
  Frames out;
  out.push_back(Bytes(raw.client_rid));
  for (auto& fr : rep.frames) out.push_back(std::move(fr));
  ControllerSockets::SendFrames(sk_->task_client(), out);
}

// ---------------------------------------------------------------------------------------
// Broadcast: one request fanned out to its targets, re-signed per engine.

void Controller::Impl::OnBroadcastFromClient(Frames&& frames) {
  Message req;
  if (!DecodeOrLog(std::move(frames), "broadcast", relay_opts_, req)) return;
  if (req.num_identities() < 1) return;
  std::string client_rid(req.identity(0));
  std::string orig = req.msg_id();
  const Json& md = req.metadata;
  bool coalescing = wire::GetBool(md, "is_coalescing", false);
  std::vector<std::pair<std::string, int>> targets;
  if (md.contains("targets") && md["targets"].is_array()) {
    for (const auto& t : md["targets"]) {
      if (t.is_array() && t.size() == 2 && t[0].is_string() && t[1].is_number_integer())
        targets.emplace_back(t[0].get<std::string>(), t[1].get<int>());
    }
  }
  Coalescing pending{client_rid, {}, {}};
  std::string parent_text(req.frame(wire::kParentOffset));
  std::string content_text(req.frame(wire::kContentOffset));
  for (const auto& [uuid, id] : targets) {
    Json header = req.header;
    header["msg_id"] = orig + "_" + uuid;
    Json meta = md;
    meta["original_msg_id"] = orig;
    meta["targets"] = Json::array({Json::array({uuid, id})});
    if (!registry_.FindByUuid(uuid)) {
      if (!coalescing) {
        std::string why = "no engine with uuid '" + uuid + "'";
        SHOAL_LOG(Warn) << "broadcast " << orig << ": " << why;
        SendReply(sk_->broadcast_client(), {client_rid}, ReplyType(req.msg_type()), header,
                  ErrorContent("EngineError", why));
      }
      continue;
    }
    std::string h = wire::Dump(header), m = wire::Dump(meta);
    Frames out;
    out.push_back(Bytes(uuid));
    out.push_back(Bytes(client_rid));
    out.push_back(Bytes(wire::kDelimiter));
    out.push_back(Bytes(signer_->Sign(h, parent_text, m, content_text)));
    out.push_back(Bytes(h));
    out.push_back(Bytes(parent_text));
    out.push_back(Bytes(m));
    out.push_back(Bytes(content_text));
    for (size_t i = 0; i < req.num_buffers(); ++i)
      out.push_back(wire::ShareFrame(req.frames[req.delim + wire::kFirstBufferOffset + i]));
    SendToEngineSocket(sk_->broadcast_engine(), uuid, out);
    pending.expected.emplace_back(uuid, id);
  }
  if (coalescing) {
    if (pending.expected.empty()) {
      SendReply(sk_->broadcast_client(), {client_rid}, ReplyType(req.msg_type()), req.header,
                ErrorContent("EngineError", "none of the broadcast targets is registered"));
    } else {
      coalescing_[orig] = std::move(pending);
    }
  }
}

void Controller::Impl::OnBroadcastFromEngine(Frames&& frames) {
  Message rep;
  wire::DecodeOptions opts = relay_opts_;
  opts.parse_parent = true;
  if (!DecodeOrLog(std::move(frames), "broadcast (engine side)", opts, rep)) return;
  if (rep.num_identities() < 2) return;
  const Json& md = rep.metadata;
  if (md.is_object() && wire::GetBool(md, "is_coalescing", false)) {
    std::string orig = wire::GetString(md, "original_msg_id");
    auto it = coalescing_.find(orig);
    if (it == coalescing_.end()) {
      SHOAL_LOG(Warn) << "coalescing reply for unknown broadcast " << orig;
      return;
    }
    std::string uuid(rep.identity(0));
    it->second.replies.emplace_back(uuid, std::move(rep));
    if (it->second.replies.size() >= it->second.expected.size()) {
      Coalescing done = std::move(it->second);
      coalescing_.erase(it);
      FinishCoalescing(orig, done);
    }
    return;
  }
  // Non-coalescing: relay as is, without the engine's routing id.
  rep.frames.erase(rep.frames.begin());
  ControllerSockets::SendFrames(sk_->broadcast_client(), rep.frames);
}

void Controller::Impl::FinishCoalescing(const std::string& orig_id, Coalescing& c) {
  if (c.replies.empty()) {
    SHOAL_LOG(Warn) << "broadcast " << orig_id << ": every target died";
    return;
  }
  // Results go back in the request's target order (clients pair them with
  // broadcast_targets, and users expect the order they asked for), not arrival order.
  std::vector<std::pair<std::string, Message>*> ordered;
  Json targets = Json::array();
  for (const auto& [uuid, id] : c.expected) {
    for (auto& r : c.replies) {
      if (r.first == uuid) {
        ordered.push_back(&r);
        targets.push_back(Json::array({uuid, id}));
        break;
      }
    }
  }
  Message& last = c.replies.back().second;
  std::string_view parent = last.frame(wire::kParentOffset);
  std::string_view content = last.frame(wire::kContentOffset);
  Json meta = last.metadata;
  meta["broadcast_targets"] = targets;
  std::string h = wire::Dump(last.header), m = wire::Dump(meta);
  Frames out;
  out.push_back(Bytes(c.client_rid));
  out.push_back(Bytes(wire::kDelimiter));
  out.push_back(Bytes(signer_->Sign(h, parent, m, content)));
  out.push_back(Bytes(h));
  out.push_back(Bytes(parent));
  out.push_back(Bytes(m));
  out.push_back(Bytes(content));
  for (auto* r : ordered) {
    Message& reply = r->second;
    for (size_t i = 0; i < reply.num_buffers(); ++i)
      out.push_back(wire::ShareFrame(reply.frames[reply.delim + wire::kFirstBufferOffset + i]));
  }
  ControllerSockets::SendFrames(sk_->broadcast_client(), out);
}

// ---------------------------------------------------------------------------------------
// IOPub relay and heartbeat

void Controller::Impl::OnIopub(Frames&& frames) {
  // Forward first (shared frames), then look at what the hub records.
  Frames copy;
  copy.reserve(frames.size());
  for (auto& f : frames) copy.push_back(wire::ShareFrame(f));
  ControllerSockets::SendFrames(sk_->iopub_client(), copy);

  auto delim = wire::FindDelimiter(frames);
  if (!delim || frames.size() < *delim + wire::kFirstBufferOffset) return;
  // Peek at msg_type without parsing the whole header: status messages are most of iopub.
  std::string_view header = wire::View(frames[*delim + wire::kHeaderOffset]);
  if (header.find("\"status\"") != std::string_view::npos &&
      header.find("\"shutdown_reply\"") == std::string_view::npos)
    return;
  Message msg;
  wire::DecodeOptions opts;
  opts.parse_content = true;
  opts.record_signature = false;  // clients see the same message; the hub only peeks
  if (!DecodeOrLog(std::move(frames), "iopub", opts, msg)) return;
  std::string type = msg.msg_type();
  if (type == "status") return;
  if (type == msg::kIopubShutdownReply) {
    std::string session = wire::GetString(msg.header, "session");
    if (const EngineInfo* e = registry_.FindByUuid(session)) EngineGone(*e, "shut down");
    return;
  }
  hub_->OnIopub(msg);
}

void Controller::Impl::OnPong(Frames&& frames) {
  if (frames.size() != 2) return;
  heart_.OnPong(std::string(wire::View(frames[0])), wire::View(frames[1]));
}

void Controller::Impl::Beat() {
  double elapsed = static_cast<double>(clock_.MonotonicMicros() - started_) / kMicrosPerSecond;
  HeartMonitor::BeatResult r = heart_.Beat(elapsed);
  for (const auto& uuid : r.new_hearts) {
    auto info = registry_.CompleteRegistration(uuid);
    if (!info) {
      SHOAL_LOG(Debug) << "heartbeat from unregistered engine " << uuid;
      continue;
    }
    SHOAL_LOG(Info) << "engine " << info->id << " registered (" << uuid << ")";
    SaveEngineState();
    scheduler_->AddEngine(uuid);
    Notify(msg::kRegistrationNotification, {{"id", info->id}, {"uuid", uuid}});
  }
  for (const auto& uuid : r.failed_hearts) {
    if (const EngineInfo* e = registry_.FindByUuid(uuid)) {
      EngineGone(*e, "missed " + std::to_string(opts_.max_heartmonitor_misses) + " heartbeats");
    }
  }
  zmq::message_t ping = Bytes(r.ping);
  sk_->hb_ping().send(ping, zmq::send_flags::dontwait);
}

void Controller::Impl::OnTimers() {
  Micros now = clock_.MonotonicMicros();
  if (!outbox_.empty()) FlushOutbox();
  if (state_dirty_ && now >= next_state_write_) {
    WriteEngineState();
    next_state_write_ = now + 100 * kMicrosPerMilli;
  }
  if (now >= next_flush_) {
    // A persistent store commits its open batch at least this often, even when idle.
    Status st = store_->Flush();
    if (!st.ok()) SHOAL_LOG(Error) << "record store: " << st.ToString();
    next_flush_ = now + 2 * kMicrosPerSecond;
  }
  if (now >= next_beat_) {
    Beat();
    next_beat_ = now + opts_.ping_ms * kMicrosPerMilli;
  }
  for (const auto& info : registry_.ExpireStalled(now))
    SHOAL_LOG(Warn) << "registration of engine " << info.id << " (" << info.uuid
                    << ") timed out without a heartbeat";
  if (auto d = scheduler_->NextDeadline(); d && *d <= now) scheduler_->OnTimer();
  while (!stranded_mux_.empty() && stranded_mux_.front().first <= now) {
    auto stranded = hub_->FailStrandedMux(stranded_mux_.front().second);
    if (!stranded.empty())
      SHOAL_LOG(Info) << stranded.size() << " requests stranded on dead engine "
                      << stranded_mux_.front().second.id << " marked failed";
    stranded_mux_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------

Controller::Controller(ControllerOptions options, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Controller::~Controller() = default;
Status Controller::Start() { return impl_->Start(); }
Status Controller::Run() { return impl_->Run(); }
void Controller::RequestStop() { g_stop.store(true); }
std::string Controller::client_file() const { return impl_->profile().client_file(); }
std::string Controller::engine_file() const { return impl_->profile().engine_file(); }

}  // namespace shoal::controller
