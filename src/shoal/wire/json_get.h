// Typed reads of JSON values that came from peers. A missing key, null, or a value of the
// wrong type gives the fallback; nothing throws (nlohmann's value() throws on a type mismatch,
// which a malformed but signed message must never turn into a crash).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace shoal::wire {

inline const nlohmann::json* Find(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

inline std::string GetString(const nlohmann::json& j, std::string_view key,
                             std::string fallback = {}) {
  const nlohmann::json* v = Find(j, key);
  return v && v->is_string() ? v->get<std::string>() : fallback;
}

inline bool GetBool(const nlohmann::json& j, std::string_view key, bool fallback) {
  const nlohmann::json* v = Find(j, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

}  // namespace shoal::wire
