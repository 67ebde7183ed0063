// Building requests on the caller's thread: headers, targets, signatures, Tracks.
#include "shoal/client/client_core.h"
#include "shoal/wire/ids.h"

namespace shoal {
namespace {

bool IsShellRequest(std::string_view msg_type) {
  return msg_type == "apply_request" || msg_type == "execute_request";
}

zmq::message_t FrameOf(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

// Copies of `src` for all but the last user, which takes the originals.
Frames ShareOrTake(Frames& src, bool last) {
  if (last) return std::move(src);
  Frames out;
  out.reserve(src.size());
  for (auto& f : src) out.push_back(wire::ShareFrame(f));
  return out;
}

}  // namespace

Result<std::string> Client::Impl::UuidOf(int id) const {
  std::lock_guard<std::mutex> lock(engines_mu);
  auto it = engines.find(id);
  if (it == engines.end()) return Status::NotFound("no engine with id " + std::to_string(id));
  return it->second;
}

Result<std::vector<Submitted>> Client::Impl::Send(Request req) {
  if (queue.closed()) return Status::Cancelled("the client is closed");
  if (req.msg_type.empty()) return Status::InvalidArgument("a request needs a msg_type");
  const bool addressed = req.channel == Channel::kMux || req.channel == Channel::kControl ||
                         req.channel == Channel::kBroadcast;
  std::vector<std::string> uuids;
  if (addressed) {
    if (req.targets.empty())
      return Status::InvalidArgument(req.msg_type + " on this channel needs target engines");
    for (int id : req.targets) {
      SHOAL_ASSIGN_OR_RETURN(std::string uuid, UuidOf(id));
      uuids.push_back(std::move(uuid));
    }
  }
  // A coalesced broadcast has no outputs to wait for: its engines' output is parented to
  // "<msg_id>_<uuid>", which no track names, so an Outputs would never see its idle.
  const bool coalesced = req.channel == Channel::kBroadcast && req.coalescing;
  const bool wants_outputs = req.channel != Channel::kQuery && req.channel != Channel::kControl &&
                             !coalesced && IsShellRequest(req.msg_type);
  auto make_track = [&](const std::string& msg_id, const std::string& header_text, std::string uuid,
                        int engine_id) {
    client::Track t;
    t.msg_id = msg_id;
    t.channel = req.channel;
    t.request_type = req.msg_type;
    if (!uuid.empty()) t.request_header = header_text;  // only needed for EngineError
    t.engine_uuid = std::move(uuid);
    t.engine_id = engine_id;
    if (wants_outputs) t.outputs = std::make_shared<Outputs>();
    return t;
  };
  auto submitted_of = [](const client::Track& t) {
    return Submitted{t.msg_id, t.engine_id, t.promise.future(), t.outputs};
  };

  std::vector<Submitted> result;
  std::vector<client::Outgoing> batch;
  if (req.channel == Channel::kBroadcast) {
    Json targets = Json::array();
    for (size_t i = 0; i < uuids.size(); ++i) targets.push_back({uuids[i], req.targets[i]});
    req.metadata["targets"] = std::move(targets);
    req.metadata["is_broadcast"] = true;
    req.metadata["is_coalescing"] = req.coalescing;
  }
  const std::string metadata = wire::Dump(req.metadata);
  const std::string content = wire::Dump(req.content);
  const size_t n_messages =
      (req.channel == Channel::kMux || req.channel == Channel::kControl) ? uuids.size() : 1;
  for (size_t m = 0; m < n_messages; ++m) {
    Json h = wire::MakeHeader(req.msg_type, session, username);
    const std::string id = h["msg_id"].get<std::string>();
    const std::string header = wire::Dump(h);
    client::Outgoing out;
    out.channel = req.channel;
    std::vector<zmq::message_t> idents;
    if (n_messages > 1 || req.channel == Channel::kMux || req.channel == Channel::kControl) {
      idents.push_back(FrameOf(uuids[m]));
      out.tracks.push_back(make_track(id, header, uuids[m], req.targets[m]));
    } else if (req.channel == Channel::kBroadcast && !req.coalescing) {
      for (size_t i = 0; i < uuids.size(); ++i)
        out.tracks.push_back(make_track(id + "_" + uuids[i], header, uuids[i], req.targets[i]));
    } else {
      out.tracks.push_back(make_track(id, header, "", -1));
      out.tracks.back().coalescing = req.coalescing;
    }
    out.frames = wire::EncodeParts(idents, header, "{}", metadata, content, *send_signer,
                                   ShareOrTake(req.buffers, m + 1 == n_messages));
    for (const auto& t : out.tracks) result.push_back(submitted_of(t));
    batch.push_back(std::move(out));
  }
  for (auto& out : batch) {
    if (!queue.Push(out)) return Status::Cancelled("the client is closed");
  }
  return result;
}

Result<std::vector<Submitted>> Client::Send(Request request) {
  return impl_->Send(std::move(request));
}

Result<std::vector<Submitted>> Client::Execute(const std::vector<int>& targets, std::string code,
                                               bool silent) {
  Request r;
  r.channel = Channel::kMux;
  r.msg_type = "execute_request";
  // IPython Parallel's content: no store_history, so the engine counts every non-silent
  // cell (ipykernel's default) and Out[<engine>:<count>] goes up as with ipyparallel.
  r.content = {{"code", std::move(code)}, {"silent", silent}, {"user_expressions", Json::object()}};
  r.targets = targets;
  return Send(std::move(r));
}

Result<std::vector<Submitted>> Client::ApplyDirect(const std::vector<int>& targets, Frames buffers,
                                                   Json metadata) {
  Request r;
  r.channel = Channel::kMux;
  r.msg_type = "apply_request";
  r.buffers = std::move(buffers);
  r.metadata = std::move(metadata);
  r.targets = targets;
  return Send(std::move(r));
}

Result<Submitted> Client::ApplyBalanced(Frames buffers, Json metadata) {
  Request r;
  r.channel = Channel::kTask;
  r.msg_type = "apply_request";
  r.buffers = std::move(buffers);
  r.metadata = std::move(metadata);
  SHOAL_ASSIGN_OR_RETURN(auto sent, Send(std::move(r)));
  return std::move(sent[0]);
}

static Request ControlRequest(const std::vector<int>& targets, const char* type, Json content) {
  Request r;
  r.channel = Channel::kControl;
  r.msg_type = type;
  r.content = std::move(content);
  r.targets = targets;
  return r;
}

Result<std::vector<Submitted>> Client::Abort(const std::vector<int>& targets,
                                             std::vector<std::string> msg_ids) {
  return Send(ControlRequest(targets, "abort_request", {{"msg_ids", std::move(msg_ids)}}));
}

Result<std::vector<Submitted>> Client::ClearNamespace(const std::vector<int>& targets) {
  return Send(ControlRequest(targets, "clear_request", Json::object()));
}

Result<std::vector<Submitted>> Client::SignalEngines(const std::vector<int>& targets, int sig) {
  return Send(ControlRequest(targets, "signal_request", {{"sig", sig}}));
}

Result<std::vector<Submitted>> Client::ShutdownEngines(const std::vector<int>& targets) {
  return Send(ControlRequest(targets, "shutdown_request", {{"restart", false}}));
}

Result<Submitted> Client::HubQuery(std::string msg_type, Json content) {
  Request r;
  r.channel = Channel::kQuery;
  r.msg_type = std::move(msg_type);
  r.content = std::move(content);
  SHOAL_ASSIGN_OR_RETURN(auto sent, Send(std::move(r)));
  return std::move(sent[0]);
}

}  // namespace shoal
