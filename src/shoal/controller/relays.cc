// The relays: mux and control (client <-> engine), the task channel (through the
// TaskScheduler), iopub (engines -> clients, with what the Hub records).
#include <algorithm>

#include "shoal/common/log.h"
#include "shoal/controller/controller_impl.h"
#include "shoal/wire/iso_date.h"
#include "shoal/wire/json_get.h"

namespace shoal::controller {

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
      SHOAL_LOG(Warn) << "dropping " << it->second.size() << " messages for engine " << it->first
                      << ", which left before it connected";
      it = outbox_.erase(it);
      continue;
    }
    auto& queue = it->second;
    while (!queue.empty() &&
           ControllerSockets::TrySendToPeer(*queue.front().sock, queue.front().frames))
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
  if (relay.hub) {
    mux_in_flight_[req.msg_id()] = {target, std::string(req.identity(0)), req.msg_type(),
                                    std::string(req.frame(wire::kHeaderOffset))};
    hub_->OnRequest(req, "mux", target);
  }
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
  if (relay.hub &&
      ParkUntilOutputs(rep, [this, relay](Message& m) { FinishRelayToClient(relay, m); }))
    return;
  FinishRelayToClient(relay, rep);
}

void Controller::Impl::FinishRelayToClient(const DirectRelay& relay, Message& rep) {
  if (relay.hub) {
    mux_in_flight_.erase(rep.parent_msg_id());
    hub_->OnResult(rep, std::string(rep.identity(0)));
  }
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
  if (ParkUntilOutputs(rep, [this](Message& m) { FinishTaskReply(m); })) return;
  FinishTaskReply(rep);
}

void Controller::Impl::FinishTaskReply(Message& rep) {
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
    if (auto r = death_reasons_.find(engine_uuid); r != death_reasons_.end())
      evalue += ": " + r->second;
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
  if (type != msg::kIopubShutdownReply) CountOutput(msg.parent_msg_id());
  if (type == msg::kIopubShutdownReply) {
    std::string session = wire::GetString(msg.header, "session");
    if (const EngineInfo* e = registry_.FindByUuid(session)) EngineGone(*e, "shut down");
    return;
  }
  hub_->OnIopub(msg);
}

void Controller::Impl::FailInFlight(const EngineInfo& info, const std::string& reason) {
  for (auto it = mux_in_flight_.begin(); it != mux_in_flight_.end();) {
    if (it->second.engine_uuid != info.uuid) {
      ++it;
      continue;
    }
    if (!reason.empty()) {
      const InFlight& f = it->second;
      Json parent;
      if (!wire::ParseJsonObject(f.header, "header", parent).ok()) parent = Json::object();
      Json content = ErrorContent("EngineError", "Engine " + std::to_string(info.id) +
                                                     " died while running task '" + it->first +
                                                     "': " + reason);
      content["engine_info"] = {{"engine_uuid", info.uuid}, {"engine_id", info.id}};
      Json md = {{"status", "error"},
                 {"engine", info.uuid},
                 {"dependencies_met", true},
                 {"engine_info", content["engine_info"]}};
      SendReply(sk_->mux_client(), {f.client_rid, info.uuid}, ReplyType(f.msg_type), parent,
                content, {}, md);
    }
    it = mux_in_flight_.erase(it);
  }
}

// ---------------------------------------------------------------------------------------
// Replies that wait for their outputs

bool Controller::Impl::ParkUntilOutputs(Message& rep, std::function<void(Message&)> resume) {
  const Json* n = rep.metadata.is_object() ? wire::Find(rep.metadata, "shoal_outputs") : nullptr;
  if (!n || !n->is_number_unsigned() || n->get<size_t>() == 0) return false;
  std::string id = rep.parent_msg_id();
  auto seen = outputs_seen_.find(id);
  size_t expected = n->get<size_t>();
  if (seen != outputs_seen_.end() && seen->second >= expected) {
    outputs_seen_.erase(seen);
    return false;
  }
  parked_[id] = ParkedReply{clock_.MonotonicMicros() + kOutputWait, expected,
                            std::make_shared<Message>(std::move(rep)), std::move(resume)};
  return true;
}

void Controller::Impl::CountOutput(const std::string& request_id) {
  if (request_id.empty()) return;
  auto [it, inserted] = outputs_seen_.try_emplace(request_id, 0);
  ++it->second;
  if (inserted) {
    outputs_order_.push_back(request_id);
    constexpr size_t kRemembered = 65536;  // outputs of requests whose replies never came
    if (outputs_order_.size() > kRemembered) {
      outputs_seen_.erase(outputs_order_.front());
      outputs_order_.pop_front();
    }
  }
  auto p = parked_.find(request_id);
  if (p == parked_.end() || it->second < p->second.expected) return;
  ParkedReply done = std::move(p->second);
  parked_.erase(p);
  outputs_seen_.erase(request_id);
  done.resume(*done.reply);
}

void Controller::Impl::ReleaseParked(Micros now) {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    SHOAL_LOG(Debug) << "reply to " << it->first << " relayed without all its outputs";
    ParkedReply done = std::move(it->second);
    outputs_seen_.erase(it->first);
    it = parked_.erase(it);
    done.resume(*done.reply);
  }
}

}  // namespace shoal::controller
