#include "shoal/controller/hub.h"

#include <algorithm>
#include <set>

#include "shoal/common/log.h"
#include "shoal/wire/iso_date.h"
#include "shoal/wire/json_get.h"
#include "shoal/wire/msg_types.gen.h"

namespace shoal::controller {

namespace msg = wire::msg;

Json ErrorContent(const std::string& ename, const std::string& evalue) {
  std::string line = ename + (evalue.empty() ? "" : ": " + evalue);
  return {{"status", "error"},
          {"ename", ename},
          {"evalue", evalue},
          {"traceback", Json::array({line})},
          {"engine_info", Json::object()}};
}

store::Blob BlobFromFrame(zmq::message_t& frame) {
  auto holder = std::make_shared<zmq::message_t>();
  holder->copy(frame);
  const char* data = static_cast<const char*>(holder->data());
  size_t size = holder->size();
  return store::Blob(std::move(holder), data, size);
}

namespace {
void ReleaseBlob(void* /*data*/, void* hint) { delete static_cast<store::Blob*>(hint); }
}  // namespace

zmq::message_t FrameFromBlob(const store::Blob& blob) {
  if (blob.size() < 1024) return zmq::message_t(blob.data(), blob.size());
  auto* keep = new store::Blob(blob);
  return zmq::message_t(const_cast<char*>(keep->data()), keep->size(), ReleaseBlob, keep);
}

namespace {
// Record date keys must hold ISO dates or null; a peer's malformed date must not cost the
// record (the store refuses non-dates), so it is dropped instead.
Json DateOrNull(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || !wire::LooksLikeIsoDate(it->get<std::string>()))
    return nullptr;
  return *it;
}
}  // namespace

Hub::Hub(store::RecordStore& store, const EngineRegistry& registry, const Clock& clock)
    : store_(store), registry_(registry), clock_(clock) {}

void Hub::LogStoreError(const Status& st, const std::string& msg_id) {
  if (!st.ok()) SHOAL_LOG(Warn) << "record " << msg_id << ": " << st.ToString();
}

Json Hub::NewRecordFields(Json header, Json metadata, Json content, const std::string& queue,
                          const std::string& engine_uuid) const {
  // Keys left out read as null (RecordStore's contract), which saves building a dozen nulls
  // per task on the hot path.
  Json f = Json::object();
  f["msg_id"] = wire::GetString(header, "msg_id");
  f["submitted"] = DateOrNull(header, "date");
  f["client_uuid"] = wire::GetString(header, "session");
  if (!engine_uuid.empty()) f["engine_uuid"] = engine_uuid;
  f["queue"] = queue;
  f["stdout"] = "";
  f["stderr"] = "";
  if (metadata.is_object())
    if (auto it = metadata.find("label"); it != metadata.end()) f["label"] = *it;
  f["header"] = std::move(header);
  f["metadata"] = std::move(metadata);
  f["content"] = std::move(content);
  return f;
}

namespace {
// A signed part of `msg` as JSON: the parsed value when the decoder kept one, else parsed
// from the frame ("{}" without the parser, the common case for request content).
Json PartOrParse(Json& parsed, const wire::Message& msg, size_t offset) {
  if (!parsed.is_null()) return std::move(parsed);
  std::string_view text = msg.frame(offset);
  if (text == "{}") return Json::object();
  Json j;
  if (!wire::ParseJsonObject(text, "record part", j).ok()) return Json::object();
  return j;
}
}  // namespace

void Hub::OnRequest(wire::Message& request, const std::string& queue,
                    const std::string& engine_uuid) {
  std::string msg_id = request.msg_id();
  pending_.insert(msg_id);
  if (queue == "mux") {
    if (const EngineInfo* e = registry_.FindByUuid(engine_uuid)) {
      queues_[e->id].insert(msg_id);
      mux_engine_[msg_id] = e->id;
    }
  } else {
    unassigned_.insert(msg_id);
  }
  auto make_record = [&](Json header, Json metadata) {
    store::Record rec;
    rec.fields = NewRecordFields(std::move(header), std::move(metadata),
                                 PartOrParse(request.content, request, wire::kContentOffset), queue,
                                 engine_uuid);
    for (size_t i = 0; i < request.num_buffers(); ++i)
      rec.buffers.push_back(
          BlobFromFrame(request.frames[request.delim + wire::kFirstBufferOffset + i]));
    return rec;
  };
  // The parsed header and metadata move into the record: callers only forward frames after.
  Status st =
      store_.Add(msg_id, make_record(std::move(request.header), std::move(request.metadata)));
  if (st.code() == StatusCode::kAlreadyExists) {
    // iopub output arrived before the request: merge, keeping what the output recorded.
    Json none;
    store::Record rec = make_record(PartOrParse(none, request, wire::kHeaderOffset),
                                    PartOrParse(none, request, wire::kMetadataOffset));
    store::RecordUpdate up;
    for (const char* k : {"header", "metadata", "content", "submitted", "client_uuid",
                          "engine_uuid", "queue", "label"})
      if (rec.fields.contains(k)) up.fields[k] = std::move(rec.fields[k]);
    up.buffers = std::move(rec.buffers);
    st = store_.Update(msg_id, std::move(up));
  }
  LogStoreError(st, msg_id);
}

void Hub::OnTaskAssigned(const std::string& msg_id, const std::string& engine_uuid) {
  unassigned_.erase(msg_id);
  if (const EngineInfo* e = registry_.FindByUuid(engine_uuid)) {
    tasks_[e->id].insert(msg_id);
    task_engine_[msg_id] = e->id;
  }
  store::RecordUpdate up;
  up.fields["engine_uuid"] = engine_uuid;
  LogStoreError(store_.Update(msg_id, std::move(up)), msg_id);
}

void Hub::OnResult(wire::Message& reply, const std::string& engine_uuid) {
  std::string msg_id = reply.parent_msg_id();
  if (msg_id.empty()) return;
  Json content = PartOrParse(reply.content, reply, wire::kContentOffset);
  std::string status = wire::GetString(content, "status");
  pending_.erase(msg_id);
  unassigned_.erase(msg_id);
  int eid = -1;
  if (auto it = mux_engine_.find(msg_id); it != mux_engine_.end()) {
    eid = it->second;
    queues_[eid].erase(msg_id);
    mux_engine_.erase(it);
  }
  if (auto it = task_engine_.find(msg_id); it != task_engine_.end()) {
    eid = it->second;
    tasks_[eid].erase(msg_id);
    task_engine_.erase(it);
  }
  if (eid < 0 && !engine_uuid.empty())
    if (const EngineInfo* e = registry_.FindByUuid(engine_uuid)) eid = e->id;
  if (eid >= 0 && status != "aborted") {
    Completed& c = completed_[eid];
    ++c.count;
    c.recent.push_back(msg_id);
    if (c.recent.size() > kRecentCompleted) c.recent.pop_front();
  }
  store::RecordUpdate up;
  up.fields["started"] = DateOrNull(reply.metadata, "started");
  up.fields["completed"] = DateOrNull(reply.header, "date");
  if (up.fields["completed"].is_null())  // a finished record must say so
    up.fields["completed"] = wire::FormatIsoDate(clock_.WallMicros());
  up.fields["received"] = wire::FormatIsoDate(clock_.WallMicros());
  up.fields["engine_uuid"] = engine_uuid;
  // Callers only forward frames after this: the parsed parts move into the record.
  up.fields["result_header"] = std::move(reply.header);
  up.fields["result_metadata"] = std::move(reply.metadata);
  up.fields["result_content"] = std::move(content);
  std::vector<store::Blob> bufs;
  bufs.reserve(reply.num_buffers());
  for (size_t i = 0; i < reply.num_buffers(); ++i)
    bufs.push_back(BlobFromFrame(reply.frames[reply.delim + wire::kFirstBufferOffset + i]));
  up.result_buffers = std::move(bufs);
  LogStoreError(store_.Update(msg_id, std::move(up)), msg_id);
}

void Hub::OnIopub(const wire::Message& msg) {
  std::string msg_id = msg.parent_msg_id();
  if (msg_id.empty()) return;
  std::string type = msg.msg_type();
  const Json& c = msg.content;
  Status st;
  auto ensure = [&]() {
    // Output may come before the request copy: create a placeholder record.
    if (store_.Get(msg_id).ok()) return;
    store::Record rec;
    rec.fields = NewRecordFields(Json::object(), Json::object(), Json::object(), "", "");
    rec.fields["msg_id"] = msg_id;
    rec.fields["header"] = nullptr;
    rec.fields["metadata"] = nullptr;
    rec.fields["content"] = nullptr;
    rec.fields["submitted"] = nullptr;
    rec.fields["client_uuid"] = nullptr;
    rec.fields["queue"] = nullptr;
    (void)store_.Add(msg_id, std::move(rec));
  };
  if (type == "stream") {
    std::string name = wire::GetString(c, "name");
    if (name != "stdout" && name != "stderr") return;
    st = store_.AppendText(msg_id, name, wire::GetString(c, "text"));
    if (st.code() == StatusCode::kNotFound) {
      ensure();
      st = store_.AppendText(msg_id, name, wire::GetString(c, "text"));
    }
  } else if (type == "execute_input" || type == "execute_result" || type == "error" ||
             type == "display_data") {
    store::RecordUpdate up;
    if (type == "execute_input") {
      up.fields["execute_input"] = wire::GetString(c, "code");
    } else if (type == "display_data") {
      return;  // not one of the record keys; clients get display data from iopub directly
    } else {
      up.fields[type] = c;
    }
    st = store_.Update(msg_id, up);
    if (st.code() == StatusCode::kNotFound) {
      ensure();
      st = store_.Update(msg_id, std::move(up));
    }
  } else {
    return;
  }
  LogStoreError(st, msg_id);
}

void Hub::OnResubmitted(const std::string& old_id, const std::string& new_id, const Json& header,
                        const Json& metadata, const Json& content,
                        std::vector<store::Blob> buffers) {
  store::Record rec;
  rec.fields = NewRecordFields(header, metadata, content, "task", "");
  rec.buffers = std::move(buffers);
  pending_.insert(new_id);
  unassigned_.insert(new_id);
  LogStoreError(store_.Add(new_id, std::move(rec)), new_id);
  store::RecordUpdate up;
  up.fields["resubmitted"] = new_id;
  LogStoreError(store_.Update(old_id, std::move(up)), old_id);
}

std::vector<std::string> Hub::FailStrandedMux(const EngineInfo& info, const std::string& reason) {
  std::vector<std::string> failed;
  auto it = queues_.find(info.id);
  if (it == queues_.end()) return failed;
  std::string now = wire::FormatIsoDate(clock_.WallMicros());
  for (const auto& msg_id : it->second) {
    failed.push_back(msg_id);
    pending_.erase(msg_id);
    mux_engine_.erase(msg_id);
    store::RecordUpdate up;
    up.fields["result_content"] = ErrorContent(
        "EngineError", "Engine " + std::to_string(info.id) + " died while running task '" + msg_id +
                           "'" + (reason.empty() ? "" : ": " + reason));
    up.fields["result_header"] = {{"engine", info.uuid}, {"date", now}};
    up.fields["completed"] = now;
    up.fields["engine_uuid"] = info.uuid;
    up.result_buffers = std::vector<store::Blob>{};
    LogStoreError(store_.Update(msg_id, std::move(up)), msg_id);
  }
  queues_.erase(it);
  return failed;
}

QueryReply Hub::HandleQuery(const std::string& msg_type, const Json& content) {
  if (msg_type == msg::kQueueRequest) return Queue(content);
  if (msg_type == msg::kResultRequest) return Results(content);
  if (msg_type == msg::kHistoryRequest) return History();
  if (msg_type == msg::kDbRequest) return Db(content);
  if (msg_type == msg::kPurgeRequest) return Purge(content);
  return {msg::kHubError, ErrorContent("KeyError", "Bad Message Type: '" + msg_type + "'"), {}};
}

Result<std::vector<int>> Hub::ResolveTargets(const Json& targets) const {
  std::vector<int> ids;
  if (targets.is_null()) {
    for (const auto& [id, info] : registry_.engines()) ids.push_back(id);
    return ids;
  }
  Json list = targets.is_array() ? targets : Json::array({targets});
  std::vector<Json> bad;
  for (const auto& t : list) {
    if (t.is_number_integer()) {
      int id = t.get<int>();
      if (registry_.FindById(id)) {
        ids.push_back(id);
        continue;
      }
    } else if (t.is_string()) {
      if (const EngineInfo* e = registry_.FindByUuid(t.get<std::string>())) {
        ids.push_back(e->id);
        continue;
      }
    }
    bad.push_back(t);
  }
  if (!bad.empty()) return Status::NotFound("No Such Engine: " + Json(bad).dump());
  return ids;
}

QueryReply Hub::Queue(const Json& content) {
  bool verbose = wire::GetBool(content, "verbose", false);
  auto targets = ResolveTargets(content.contains("targets") ? content["targets"] : Json());
  if (!targets.ok())
    return {msg::kHubError, ErrorContent("IndexError", targets.status().message()), {}};
  auto listing = [&](const auto& ids) -> Json {
    if (!verbose) return ids.size();
    Json arr = Json::array();
    for (const auto& id : ids) arr.push_back(id);
    return arr;
  };
  Json out = {{"status", "ok"}};
  static const std::unordered_set<std::string> kEmpty;
  for (int id : *targets) {
    auto q = queues_.find(id);
    auto t = tasks_.find(id);
    auto c = completed_.find(id);
    Json entry = Json::object();
    entry["queue"] = listing(q == queues_.end() ? kEmpty : q->second);
    entry["tasks"] = listing(t == tasks_.end() ? kEmpty : t->second);
    if (c == completed_.end()) {
      entry["completed"] = verbose ? Json::array() : Json(0);
    } else {
      entry["completed"] = verbose ? listing(c->second.recent) : Json(c->second.count);
    }
    out[std::to_string(id)] = entry;
  }
  out["unassigned"] = listing(unassigned_);
  return {msg::kQueueReply, out, {}};
}

QueryReply Hub::Results(const Json& content) {
  std::set<std::string> ids;
  if (content.contains("msg_ids") && content["msg_ids"].is_array())
    for (const auto& m : content["msg_ids"])
      if (m.is_string()) ids.insert(m.get<std::string>());
  bool status_only = wire::GetBool(content, "status_only", false);
  Json out = {{"status", "ok"}, {"pending", Json::array()}, {"completed", Json::array()}};
  wire::Frames buffers;
  for (const auto& msg_id : ids) {  // sorted and de-duplicated, as clients expect
    if (pending_.count(msg_id)) {
      out["pending"].push_back(msg_id);
      continue;
    }
    auto rec = store_.Get(msg_id);
    if (!rec.ok() || !wire::Find(rec->fields, "completed") || rec->fields["completed"].is_null()) {
      if (rec.ok()) {
        out["pending"].push_back(msg_id);
        continue;
      }
      return {msg::kResultReply, ErrorContent("KeyError", "'No such message: " + msg_id + "'"), {}};
    }
    out["completed"].push_back(msg_id);
    if (status_only) continue;
    const Json& f = rec->fields;
    auto get = [&](const char* k) { return f.contains(k) ? f[k] : Json(); };
    Json io = Json::object();
    for (const char* k : {"execute_input", "execute_result", "error", "stdout", "stderr"})
      io[k] = get(k);
    out[msg_id] = {{"header", get("header")},
                   {"metadata", get("metadata")},
                   {"result_metadata", get("result_metadata")},
                   {"result_header", get("result_header")},
                   {"result_content", get("result_content")},
                   {"received", get("received")},
                   {"io", io}};
    for (const auto& b : rec->result_buffers) buffers.push_back(FrameFromBlob(b));
  }
  return {msg::kResultReply, out, std::move(buffers)};
}

QueryReply Hub::History() {
  auto h = store_.History();
  if (!h.ok()) return {msg::kHistoryReply, ErrorContent("KeyError", h.status().message()), {}};
  return {msg::kHistoryReply, {{"status", "ok"}, {"history", *h}}, {}};
}

QueryReply Hub::Db(const Json& content) {
  Json query = content.contains("query") ? content["query"] : Json::object();
  std::optional<std::vector<std::string>> keys;
  if (content.contains("keys") && content["keys"].is_array()) {
    keys.emplace();
    for (const auto& k : content["keys"])
      if (k.is_string()) keys->push_back(k.get<std::string>());
  }
  auto found = store_.Find(query, keys);
  if (!found.ok()) {
    const char* ename =
        found.status().code() == StatusCode::kInvalidArgument ? "ValueError" : "KeyError";
    return {msg::kDbReply, ErrorContent(ename, found.status().message()), {}};
  }
  bool want_bufs = keys && std::count(keys->begin(), keys->end(), "buffers");
  bool want_rbufs = keys && std::count(keys->begin(), keys->end(), "result_buffers");
  Json records = Json::array();
  Json buffer_lens = want_bufs ? Json::array() : Json();
  Json result_buffer_lens = want_rbufs ? Json::array() : Json();
  wire::Frames frames;
  for (auto& rec : *found) {
    Json f = rec.fields;
    if (!keys) {
      for (auto k : store::kRecordKeys)
        if (!f.contains(k)) f[std::string(k)] = nullptr;
    }
    records.push_back(std::move(f));
    if (want_bufs) {
      buffer_lens.push_back(rec.buffers.size());
      for (const auto& b : rec.buffers) frames.push_back(FrameFromBlob(b));
    }
    if (want_rbufs) {
      result_buffer_lens.push_back(rec.result_buffers.size());
      for (const auto& b : rec.result_buffers) frames.push_back(FrameFromBlob(b));
    }
  }
  // Frames go per record: its buffers, then its result buffers.
  if (want_bufs && want_rbufs) {
    frames.clear();
    for (auto& rec : *found) {
      for (const auto& b : rec.buffers) frames.push_back(FrameFromBlob(b));
      for (const auto& b : rec.result_buffers) frames.push_back(FrameFromBlob(b));
    }
  }
  Json out = {{"status", "ok"},
              {"records", records},
              {"buffer_lens", buffer_lens},
              {"result_buffer_lens", result_buffer_lens}};
  return {msg::kDbReply, out, std::move(frames)};
}

QueryReply Hub::Purge(const Json& content) {
  Json msg_ids = content.contains("msg_ids") ? content["msg_ids"] : Json::array();
  Json engine_ids = content.contains("engine_ids") ? content["engine_ids"] : Json::array();
  if (msg_ids.is_string() && msg_ids.get<std::string>() == "all") {
    auto n = store_.DropMatching({{"completed", {{"$ne", nullptr}}}});
    if (!n.ok()) return {msg::kPurgeReply, ErrorContent("RuntimeError", n.status().message()), {}};
  } else if (msg_ids.is_array() && !msg_ids.empty()) {
    for (const auto& m : msg_ids)
      if (m.is_string() && pending_.count(m.get<std::string>()))
        return {msg::kPurgeReply,
                ErrorContent("IndexError", "msg pending: '" + m.get<std::string>() + "'"),
                {}};
    auto n = store_.DropMatching({{"msg_id", {{"$in", msg_ids}}}});
    if (!n.ok()) return {msg::kPurgeReply, ErrorContent("RuntimeError", n.status().message()), {}};
  }
  if (engine_ids.is_array()) {
    for (const auto& e : engine_ids) {
      const EngineInfo* info = e.is_number_integer() ? registry_.FindById(e.get<int>()) : nullptr;
      if (!info)
        return {msg::kPurgeReply, ErrorContent("IndexError", "No such engine: " + e.dump()), {}};
      auto n =
          store_.DropMatching({{"engine_uuid", info->uuid}, {"completed", {{"$ne", nullptr}}}});
      if (!n.ok())
        return {msg::kPurgeReply, ErrorContent("RuntimeError", n.status().message()), {}};
      completed_.erase(info->id);
    }
  }
  return {msg::kPurgeReply, {{"status", "ok"}}, {}};
}

}  // namespace shoal::controller
