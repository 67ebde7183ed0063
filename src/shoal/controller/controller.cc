#include "shoal/controller/controller.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>

#include "shoal/common/log.h"
#include "shoal/controller/controller_impl.h"
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
}  // namespace

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
  so.history_limit = static_cast<size_t>(opts_.task_history_limit);
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
  SHOAL_LOG(Info) << "shoal-controller ready: clients " << profile_.client_file() << ", engines "
                  << profile_.engine_file() << " (scheme " << opts_.scheme << ", hwm " << opts_.hwm
                  << ", ping " << opts_.ping_ms << " ms)";
  return Status::Ok();
}

Status Controller::Impl::WriteConnectionFiles() {
  SHOAL_RETURN_NOT_OK(
      wire::WriteJsonFile(profile_.engine_file(), wire::EngineFileJson(engine_info_)));
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
    if (!repings_.empty()) next = std::min(next, *repings_.begin());
    if (!held_notes_.empty()) next = std::min(next, notes_held_until_);
    if (shutdown_at_) next = std::min(next, *shutdown_at_);
    if (state_dirty_) next = std::min(next, next_state_write_);
    if (!outbox_.empty()) next = std::min(next, now + 20 * kMicrosPerMilli);  // retry soon
    for (const auto& [id, p] : parked_) next = std::min(next, p.deadline);
    long timeout_ms = std::clamp<long>(static_cast<long>((next - now + 999) / 1000), 0, 200);
    sk_->Poll(timeout_ms, [this](Channel ch, Frames&& frames) { Dispatch(ch, std::move(frames)); });
    OnTimers();
  }
  SHOAL_LOG(Info) << "shoal-controller shutting down";
  ReleaseHeldNotes();
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
      case Channel::kQuery:
        OnQuery(std::move(frames));
        break;
      case Channel::kMuxClient:
        OnMuxFromClient(std::move(frames));
        break;
      case Channel::kMuxEngine:
        OnMuxFromEngine(std::move(frames));
        break;
      case Channel::kControlClient:
        OnControlFromClient(std::move(frames));
        break;
      case Channel::kControlEngine:
        OnControlFromEngine(std::move(frames));
        break;
      case Channel::kTaskClient:
        OnTaskFromClient(std::move(frames));
        break;
      case Channel::kTaskEngine:
        OnTaskFromEngine(std::move(frames));
        break;
      case Channel::kBroadcastClient:
        OnBroadcastFromClient(std::move(frames));
        break;
      case Channel::kBroadcastEngine:
        OnBroadcastFromEngine(std::move(frames));
        break;
      case Channel::kIopubEngine:
        OnIopub(std::move(frames));
        break;
      case Channel::kPong:
        OnPong(std::move(frames));
        break;
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
                                 std::string_view msg_type, const Json& parent, const Json& content,
                                 Frames buffers, const Json& metadata) {
  Json header = wire::MakeHeader(msg_type, session_, username_);
  Frames f = wire::Encode(idents, header, parent, metadata, content, *signer_, std::move(buffers));
  ControllerSockets::SendFrames(sock, f);
}

// A client connects its notification SUB only after the connection_reply (IPython Parallel
// does), so a registration announced in the moment after a reply would be lost to it and its
// wait_for_engines never return. Registration notifications are therefore held, in order,
// until kNotificationHold after the last connection_reply (the reply already lists the
// engines registered so far; clients ignore a repeated registration). Other notifications go
// at once: clients fail a dead engine's requests on its unregistration, and an engine that
// leaves while its registration is still held is simply never announced.
void Controller::Impl::Notify(std::string_view msg_type, const Json& content, const Json& parent) {
  if (msg_type == msg::kRegistrationNotification &&
      (!held_notes_.empty() || clock_.MonotonicMicros() < notes_held_until_)) {
    held_notes_.push_back({std::string(msg_type), content, parent});
    return;
  }
  if (msg_type == msg::kUnregistrationNotification) {
    std::erase_if(held_notes_, [&](const HeldNote& n) {
      return n.content.value("id", -1) == content.value("id", -2);
    });
  }
  SendReply(sk_->notification(), {}, msg_type, parent, content);
}

void Controller::Impl::ReleaseHeldNotes() {
  for (auto& n : held_notes_) SendReply(sk_->notification(), {}, n.msg_type, n.parent, n.content);
  held_notes_.clear();
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
    notes_held_until_ = clock_.MonotonicMicros() + kNotificationHold;
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
  ScheduleRepings(clock_.MonotonicMicros());
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
  std::string reason = wire::GetString(c, "reason");
  if (const EngineInfo* e = registry_.FindById(id)) {
    EngineGone(*e, reason.empty() ? "unregistered" : reason, reason);
    return;
  }
  bool was_registered = false;
  if (auto info = registry_.Unregister(id, &was_registered))
    SHOAL_LOG(Info) << "engine " << id << " cancelled its registration";
}

void Controller::Impl::EngineGone(const EngineInfo& dead, const std::string& why,
                                  const std::string& reason) {
  EngineInfo info = dead;  // `dead` may point into the registry
  if (!registry_.Unregister(info.id)) return;
  SHOAL_LOG(Info) << "engine " << info.id << " (" << info.uuid << ") " << why;
  heart_.Forget(info.uuid);
  // Answer its direct requests first: stock clients fail the rest themselves on the
  // notification, without the reason.
  FailInFlight(info, reason);
  Json note = {{"id", info.id}, {"uuid", info.uuid}};
  if (!reason.empty()) {
    note["reason"] = reason;  // an extension: stock clients ignore it
    death_reasons_[info.uuid] = reason;
  }
  Notify(msg::kUnregistrationNotification, note);
  SaveEngineState();
  scheduler_->RemoveEngine(info.uuid, !reason.empty());
  if (!reason.empty()) {
    hub_->FailStrandedMux(info, reason);
  } else {
    stranded_mux_.emplace_back(
        clock_.MonotonicMicros() + opts_.RegistrationTimeoutSeconds() * kMicrosPerSecond, info);
  }
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
    // As IPython Parallel, a resubmitted task loses its scheduling metadata (after, follow,
    // targets...); the payload format marker must stay, or engines misread the buffers.
    Json metadata = Json::object();
    if (rec.fields.contains("metadata") && rec.fields["metadata"].is_object() &&
        rec.fields["metadata"].contains("serializer"))
      metadata["serializer"] = rec.fields["metadata"]["serializer"];
    Frames bufs;
    for (const auto& b : rec.buffers) bufs.push_back(FrameFromBlob(b));
    Frames frames = wire::Encode({}, header, header, metadata, content, *signer_, std::move(bufs));
    auto task = std::make_unique<RawTask>();
    Status st = wire::Decode(std::move(frames), nullptr, relay_opts_, task->msg);
    if (!st.ok()) continue;
    hub_->OnResubmitted(old_id, new_id, header, metadata, content, rec.buffers);
    resubmitted[old_id] = new_id;
    auto spec = ParseTaskSpec(new_id, Json::object());
    scheduler_->Submit(std::move(spec).value(), std::move(task));
  }
  SendReply(sk_->query(), {peer}, msg::kResubmitReply, req.header,
            {{"status", "ok"}, {"resubmitted", resubmitted}});
}

void Controller::Impl::OnPong(Frames&& frames) {
  if (frames.size() != 2) return;
  std::string uuid(wire::View(frames[0]));
  if (heart_.OnPong(uuid, wire::View(frames[1]))) CompleteRegistration(uuid);
}

// An engine's heart answered for the first time: it is registered now (IPython Parallel
// waits for the next beat; answering at once saves up to a ping period per engine).
void Controller::Impl::CompleteRegistration(const std::string& uuid) {
  auto info = registry_.CompleteRegistration(uuid);
  if (!info) {
    SHOAL_LOG(Debug) << "heartbeat from unregistered engine " << uuid;
    return;
  }
  SHOAL_LOG(Info) << "engine " << info->id << " registered (" << uuid << ")";
  SaveEngineState();
  scheduler_->AddEngine(uuid);
  Notify(msg::kRegistrationNotification, {{"id", info->id}, {"uuid", uuid}});
}

// Repeats the current ping soon after a registration request, so a new engine need not
// wait for the next beat to prove its heart. Repeats are coalesced (at most one per
// kRepingSpacing) and, since they carry the current payload, change no engine's misses.
void Controller::Impl::ScheduleRepings(Micros now) {
  for (Micros delay : {20 * kMicrosPerMilli, 100 * kMicrosPerMilli, 400 * kMicrosPerMilli}) {
    Micros at = now + delay;
    auto it = repings_.lower_bound(at - kRepingSpacing);
    if (it != repings_.end() && *it <= at + kRepingSpacing) continue;
    repings_.insert(at);
  }
}

void Controller::Impl::Beat() {
  double elapsed = static_cast<double>(clock_.MonotonicMicros() - started_) / kMicrosPerSecond;
  HeartMonitor::BeatResult r = heart_.Beat(elapsed);
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
  if (!held_notes_.empty() && now >= notes_held_until_) ReleaseHeldNotes();
  if (!outbox_.empty()) FlushOutbox();
  if (!parked_.empty()) ReleaseParked(now);
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
  while (!repings_.empty() && *repings_.begin() <= now) {
    repings_.erase(repings_.begin());
    if (!heart_.current_ping().empty()) {
      zmq::message_t ping = Bytes(heart_.current_ping());
      sk_->hb_ping().send(ping, zmq::send_flags::dontwait);
    }
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
