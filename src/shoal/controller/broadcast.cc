// Broadcast: one request fanned out to its targets with a re-signed copy per engine
// (msg_id "<orig>_<uuid>"), replies relayed, or coalesced into one in target order.
#include <algorithm>

#include "shoal/common/log.h"
#include "shoal/controller/controller_impl.h"
#include "shoal/wire/iso_date.h"
#include "shoal/wire/json_get.h"

namespace shoal::controller {

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
  if (ParkUntilOutputs(rep, [this](Message& m) { FinishBroadcastReply(m); })) return;
  FinishBroadcastReply(rep);
}

void Controller::Impl::FinishBroadcastReply(Message& rep) {
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

}  // namespace shoal::controller
