#include "shoal/store/record_fields.h"

#include "shoal/wire/iso_date.h"

namespace shoal::store {

int RecordKeyIndex(std::string_view key) {
  for (size_t i = 0; i < kRecordKeys.size(); ++i)
    if (kRecordKeys[i] == key) return static_cast<int>(i);
  return -1;
}

FieldKind KindOfKey(std::string_view key) {
  for (std::string_view d : kDateKeys)
    if (d == key) return FieldKind::kDate;
  static constexpr std::string_view kJsonKeys[] = {
      "header",          "metadata",       "content",        "result_header",
      "result_metadata", "result_content", "execute_result", "error"};
  for (std::string_view j : kJsonKeys)
    if (j == key) return FieldKind::kJson;
  return FieldKind::kText;
}

Status ValidateFields(const Json& fields, const std::string& msg_id) {
  if (!fields.is_object())
    return Status::InvalidArgument("record fields must be a JSON object, got " +
                                   std::string(fields.type_name()));
  for (const auto& [key, value] : fields.items()) {
    if (RecordKeyIndex(key) < 0)
      return Status::InvalidArgument("'" + key + "' is not a task record key");
    if (key == "msg_id" && !(value.is_string() && value.get_ref<const std::string&>() == msg_id))
      return Status::InvalidArgument("record msg_id " + value.dump() + " differs from '" + msg_id +
                                     "'");
    if (!value.is_null() && KindOfKey(key) == FieldKind::kDate) {
      if (!value.is_string())
        return Status::InvalidArgument("record key '" + key + "' must be null or a date, got " +
                                       value.dump());
      auto parsed = wire::ParseIsoDate(value.get_ref<const std::string&>());
      if (!parsed.ok()) return parsed.status().WithContext("record key '" + key + "'");
    }
  }
  return Status::Ok();
}

Status ValidateProjection(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    if (RecordKeyIndex(key) < 0 && key != "buffers" && key != "result_buffers")
      return Status::InvalidArgument("'" + key + "' is not a task record key");
  }
  return Status::Ok();
}

Status ValidateAppendKey(std::string_view key) {
  if (RecordKeyIndex(key) < 0 || key == "msg_id" || KindOfKey(key) != FieldKind::kText)
    return Status::InvalidArgument("cannot append text to record key '" + std::string(key) + "'");
  return Status::Ok();
}

std::optional<Micros> DateOf(const Json& fields, std::string_view key) {
  auto it = fields.find(key);
  if (it == fields.end() || !it->is_string()) return std::nullopt;
  auto parsed = wire::ParseIsoDate(it->get_ref<const std::string&>());
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

bool HasValue(const Json& fields, std::string_view key) {
  auto it = fields.find(key);
  return it != fields.end() && !it->is_null();
}

Json CompleteFields(const Json& fields) {
  Json out = fields;
  for (std::string_view key : kRecordKeys) {
    auto it = out.find(key);
    if (it == out.end()) out.emplace(std::string(key), nullptr);
  }
  return out;
}

Json ProjectFields(const Json& fields, const std::vector<std::string>& keys) {
  Json out = Json::object();
  auto copy = [&](std::string_view key) {
    auto it = fields.find(key);
    out[std::string(key)] = it == fields.end() ? Json() : *it;
  };
  copy("msg_id");
  for (const std::string& key : keys)
    if (RecordKeyIndex(key) >= 0) copy(key);
  return out;
}

bool Names(const std::vector<std::string>& keys, std::string_view name) {
  for (const std::string& k : keys)
    if (k == name) return true;
  return false;
}

size_t BufferBytes(const std::vector<Blob>& buffers) {
  size_t n = 0;
  for (const Blob& b : buffers) n += b.size();
  return n;
}

}  // namespace shoal::store
