#include "shoal/store/memory_store.h"

#include <algorithm>
#include <utility>

#include "shoal/store/record_fields.h"

namespace shoal::store {

MemoryStore::MemoryStore(MemoryStoreOptions options) : options_(options) {
  options_.cull_fraction = std::clamp(options_.cull_fraction, 0.0, 1.0);
}

Status MemoryStore::Missing(const std::string& msg_id) const {
  if (culled_.contains(msg_id))
    return Status::NotFound("record '" + msg_id +
                            "' was culled to keep the record store within its limits");
  return Status::NotFound("no record for msg_id '" + msg_id + "'");
}

MemoryStore::OrderKey MemoryStore::KeyFor(const Json& fields, uint64_t seq) const {
  std::optional<Micros> submitted = DateOf(fields, "submitted");
  return OrderKey{!submitted.has_value(), submitted.value_or(0), seq};
}

void MemoryStore::Index(Entry& e) {
  order_.emplace(e.order, &e);
  if (e.finished) finished_.emplace(e.order, &e);
}

void MemoryStore::Unindex(const Entry& e) {
  order_.erase(e.order);
  if (e.finished) finished_.erase(e.order);
}

Status MemoryStore::Add(const std::string& msg_id, Record record) {
  if (records_.contains(msg_id))
    return Status::AlreadyExists("a record for msg_id '" + msg_id + "' already exists");
  SHOAL_RETURN_NOT_OK(ValidateFields(record.fields, msg_id));
  record.fields["msg_id"] = msg_id;

  auto [it, inserted] = records_.try_emplace(msg_id);
  Entry& e = it->second;
  e.id = it->first;
  e.order = KeyFor(record.fields, next_seq_++);
  e.finished = HasValue(record.fields, "completed");
  e.bytes = BufferBytes(record.buffers) + BufferBytes(record.result_buffers);
  e.record = std::move(record);
  Index(e);
  bytes_ += e.bytes;
  // A re-used id is a new record; it must not report "culled" if dropped later.
  if (!culled_.empty()) culled_.erase(msg_id);
  MaybeCull();
  return Status::Ok();
}

Status MemoryStore::Update(const std::string& msg_id, RecordUpdate update) {
  auto it = records_.find(msg_id);
  if (it == records_.end()) return Missing(msg_id);
  SHOAL_RETURN_NOT_OK(ValidateFields(update.fields, msg_id));
  Entry& e = it->second;

  const bool reorder = update.fields.contains("submitted");
  const bool refinish = update.fields.contains("completed");
  if (reorder || refinish) Unindex(e);
  for (auto& [key, value] : update.fields.get_ref<Json::object_t&>())
    e.record.fields[key] = std::move(value);
  if (update.buffers) e.record.buffers = std::move(*update.buffers);
  if (update.result_buffers) e.record.result_buffers = std::move(*update.result_buffers);
  if (reorder) e.order = KeyFor(e.record.fields, e.order.seq);
  if (refinish) e.finished = HasValue(e.record.fields, "completed");
  if (reorder || refinish) Index(e);

  if (update.buffers || update.result_buffers) {
    bytes_ -= e.bytes;
    e.bytes = BufferBytes(e.record.buffers) + BufferBytes(e.record.result_buffers);
    bytes_ += e.bytes;
  }
  MaybeCull();
  return Status::Ok();
}

Status MemoryStore::AppendText(const std::string& msg_id, std::string_view key,
                               std::string_view text) {
  SHOAL_RETURN_NOT_OK(ValidateAppendKey(key));
  auto it = records_.find(msg_id);
  if (it == records_.end()) return Missing(msg_id);
  Json& fields = it->second.record.fields;
  auto field = fields.find(key);
  if (field == fields.end() || field->is_null()) {
    fields[std::string(key)] = std::string(text);
  } else if (field->is_string()) {
    field->get_ref<std::string&>().append(text);
  } else {
    return Status::InvalidArgument("record key '" + std::string(key) + "' of '" + msg_id +
                                   "' holds a " + field->type_name() + ", not text");
  }
  return Status::Ok();
}

Result<Record> MemoryStore::Get(const std::string& msg_id) {
  auto it = records_.find(msg_id);
  if (it == records_.end()) return Missing(msg_id);
  const Record& r = it->second.record;
  return Record{CompleteFields(r.fields), r.buffers, r.result_buffers};
}

Result<std::vector<MemoryStore::Entry*>> MemoryStore::Match(const Json& query) {
  SHOAL_ASSIGN_OR_RETURN(Query q, Query::Compile(query));
  std::vector<Entry*> out;
  if (q.msg_id_candidates()) {
    // Direct lookups: the controller's result and purge requests name their msg_ids.
    for (const std::string& id : *q.msg_id_candidates()) {
      auto it = records_.find(id);
      if (it != records_.end() && q.Matches(it->second.record.fields)) out.push_back(&it->second);
    }
    std::sort(out.begin(), out.end(),
              [](const Entry* a, const Entry* b) { return a->order < b->order; });
    out.erase(std::unique(out.begin(), out.end()), out.end());  // an id may be listed twice
  } else {
    for (auto& [key, e] : order_)
      if (q.Matches(e->record.fields)) out.push_back(e);
  }
  return out;
}

Result<std::vector<Record>> MemoryStore::Find(const Json& query,
                                              const std::optional<std::vector<std::string>>& keys) {
  if (keys) SHOAL_RETURN_NOT_OK(ValidateProjection(*keys));
  SHOAL_ASSIGN_OR_RETURN(std::vector<Entry*> matches, Match(query));
  std::vector<Record> out;
  out.reserve(matches.size());
  for (const Entry* e : matches) {
    const Record& r = e->record;
    if (!keys) {
      out.push_back(Record{CompleteFields(r.fields), r.buffers, r.result_buffers});
      continue;
    }
    Record projected{ProjectFields(r.fields, *keys), {}, {}};
    if (Names(*keys, "buffers")) projected.buffers = r.buffers;
    if (Names(*keys, "result_buffers")) projected.result_buffers = r.result_buffers;
    out.push_back(std::move(projected));
  }
  return out;
}

void MemoryStore::Remove(Entry& e) {
  Unindex(e);
  bytes_ -= e.bytes;
  std::string id(e.id);  // e.id views the key that erase destroys
  records_.erase(id);
}

Result<size_t> MemoryStore::DropMatching(const Json& query) {
  SHOAL_ASSIGN_OR_RETURN(std::vector<Entry*> matches, Match(query));
  for (Entry* e : matches) Remove(*e);
  return matches.size();
}

Status MemoryStore::Drop(const std::string& msg_id) {
  auto it = records_.find(msg_id);
  if (it == records_.end()) return Missing(msg_id);
  Remove(it->second);
  return Status::Ok();
}

Result<std::vector<std::string>> MemoryStore::History() {
  std::vector<std::string> out;
  out.reserve(order_.size());
  for (const auto& [key, e] : order_) {
    if (key.undated) break;  // undated records sort last
    out.emplace_back(e->id);
  }
  return out;
}

void MemoryStore::CullOldestFinished() {
  Entry* e = finished_.begin()->second;
  std::string id(e->id);
  Remove(*e);
  if (options_.culled_id_limit == 0) return;
  if (culled_.insert(id).second) culled_fifo_.push_back(std::move(id));
  while (culled_fifo_.size() > options_.culled_id_limit) {
    culled_.erase(culled_fifo_.front());
    culled_fifo_.pop_front();
  }
}

void MemoryStore::MaybeCull() {
  if (records_.size() > options_.record_limit) {
    size_t n = std::max<size_t>(1, static_cast<size_t>(options_.cull_fraction *
                                                       static_cast<double>(options_.record_limit)));
    while (n-- > 0 && !finished_.empty()) CullOldestFinished();
  }
  if (bytes_ > options_.size_limit) {
    const double target = static_cast<double>(options_.size_limit) * (1.0 - options_.cull_fraction);
    while (static_cast<double>(bytes_) > target && !finished_.empty()) CullOldestFinished();
  }
}

}  // namespace shoal::store
