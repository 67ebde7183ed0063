#include "shoal/client/result_book.h"

#include "shoal/wire/json_get.h"

namespace shoal::client {

std::string ReplyTypeFor(std::string_view request_type) {
  constexpr std::string_view kSuffix = "_request";
  if (request_type.size() > kSuffix.size() &&
      request_type.substr(request_type.size() - kSuffix.size()) == kSuffix)
    return std::string(request_type.substr(0, request_type.size() - kSuffix.size())) + "_reply";
  return std::string(request_type) + "_reply";
}

void ResultBook::Add(Track track) {
  std::string id = track.msg_id;
  if (!track.engine_uuid.empty() && !track.coalescing) by_engine_[track.engine_uuid].insert(id);
  Entry e;
  e.idle = track.outputs == nullptr;
  e.track = std::move(track);
  entries_.insert_or_assign(std::move(id), std::move(e));
}

void ResultBook::Deliver(Entry& e, ReplyPtr reply) {
  e.replied = true;
  // No iopub output follows a reply the controller or this client made (empty engine_info),
  // an EngineError (the engine is gone), nor, reliably, an aborted one: the outputs are
  // complete now.
  if (!e.idle) {
    const std::string status = reply->status();
    const Json& c = reply->content();
    bool engine_made = c.contains("engine_info") && !c["engine_info"].empty();
    if (reply->synthesized() || status == "aborted" || (status == "error" && !engine_made) ||
        wire::GetString(c, "ename") == "EngineError") {
      e.idle = true;
      e.track.outputs->MarkIdle();
    }
  }
  e.track.promise.Set(std::move(reply));
}

void ResultBook::Forget(std::unordered_map<std::string, Entry>::iterator it) {
  const std::string& uuid = it->second.track.engine_uuid;
  if (!uuid.empty()) {
    auto eng = by_engine_.find(uuid);
    if (eng != by_engine_.end()) {
      eng->second.erase(it->first);
      if (eng->second.empty()) by_engine_.erase(eng);
    }
  }
  entries_.erase(it);
}

void ResultBook::MaybeForget(const std::string& msg_id) {
  auto it = entries_.find(msg_id);
  if (it != entries_.end() && it->second.replied && it->second.idle) Forget(it);
}

bool ResultBook::OnReply(wire::Message&& msg) {
  std::string key = msg.parent_msg_id();
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.replied) {
    // A coalesced broadcast reply carries the last engine's parent; the request is named
    // by metadata.original_msg_id.
    wire::Json md;
    if (!wire::ParseJsonObject(msg.frame(wire::kMetadataOffset), "metadata", md).ok()) return false;
    if (!wire::GetBool(md, "is_coalescing", false)) return false;
    key = wire::GetString(md, "original_msg_id");
    it = entries_.find(key);
    if (it == entries_.end() || it->second.replied) return false;
  }
  std::string engine =
      msg.num_identities() > 0 ? std::string(msg.identity(0)) : it->second.track.engine_uuid;
  size_t header_index = msg.delim + wire::kHeaderOffset;
  auto reply =
      std::make_shared<const Reply>(key, std::move(msg.frames), header_index, std::move(engine));
  Deliver(it->second, std::move(reply));
  MaybeForget(key);
  return true;
}

bool ResultBook::OnIopub(wire::Message&& msg) {
  if (wire::GetString(msg.parent, "session") != session_) return false;
  std::string key = wire::GetString(msg.parent, "msg_id");
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.track.outputs || it->second.idle) return false;
  Outputs& out = *it->second.track.outputs;
  const std::string type = msg.msg_type();
  const wire::Json& c = msg.content;
  if (type == "status") {
    if (wire::GetString(c, "execution_state") == "idle") {
      it->second.idle = true;
      out.MarkIdle();
      MaybeForget(key);
    }
  } else if (type == "stream") {
    out.AppendStream(wire::GetString(c, "name"), wire::GetString(c, "text"));
  } else if (type == "data_message") {
    Frames buffers;
    for (size_t i = msg.delim + wire::kFirstBufferOffset; i < msg.frames.size(); ++i)
      buffers.push_back(std::move(msg.frames[i]));
    out.Store(type, std::move(msg.content), std::move(buffers));
  } else {
    out.Store(type, std::move(msg.content));
  }
  return true;
}

size_t ResultBook::OnEngineGone(int id, const std::string& uuid, const std::string& reason) {
  auto eng = by_engine_.find(uuid);
  if (eng == by_engine_.end()) return 0;
  std::unordered_set<std::string> ids = std::move(eng->second);
  by_engine_.erase(eng);
  size_t failed = 0;
  for (const std::string& msg_id : ids) {
    auto it = entries_.find(msg_id);
    if (it == entries_.end()) continue;
    Entry& e = it->second;
    e.track.engine_uuid.clear();  // already dropped from by_engine_
    if (!e.replied) {
      Deliver(e, EngineErrorReply(e.track, id, uuid, reason));
      ++failed;
    }
    // A dead engine sends no more output.
    if (!e.idle) {
      e.idle = true;
      e.track.outputs->MarkIdle();
    }
    entries_.erase(it);
  }
  return failed;
}

ReplyPtr ResultBook::EngineErrorReply(const Track& t, int id, const std::string& uuid,
                                      const std::string& reason) const {
  std::string evalue =
      "Engine " + std::to_string(id) + " died while running task '" + t.msg_id + "'";
  if (!reason.empty()) evalue += " (" + reason + ")";
  wire::Json parent;
  if (!wire::ParseJsonObject(t.request_header, "request header", parent).ok())
    parent = wire::Json::object();
  wire::Json header = {{"msg_id", t.msg_id + "_engine_error"},
                       {"msg_type", ReplyTypeFor(t.request_type)},
                       {"session", session_}};
  wire::Json content = {{"status", "error"},
                        {"ename", "EngineError"},
                        {"evalue", evalue},
                        {"traceback", {"EngineError: " + evalue}},
                        {"engine_info", wire::Json::object()}};
  wire::Json metadata = {{"status", "error"}, {"engine", uuid}};
  return Reply::Make(t.msg_id, header, parent, metadata, content, uuid);
}

void ResultBook::Fail(const std::string& msg_id, const Status& status) {
  auto it = entries_.find(msg_id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (e.track.outputs) e.track.outputs->MarkIdle();
  if (!e.replied) e.track.promise.Set(status);
  Forget(it);
}

void ResultBook::FailAll(const Status& status) {
  for (auto& [id, e] : entries_) {
    if (e.track.outputs) e.track.outputs->MarkIdle();
    if (!e.replied) e.track.promise.Set(status);
  }
  entries_.clear();
  by_engine_.clear();
}

}  // namespace shoal::client
