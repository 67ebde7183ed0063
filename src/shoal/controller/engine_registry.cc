#include "shoal/controller/engine_registry.h"

namespace shoal::controller {

Result<int> EngineRegistry::BeginRegistration(const std::string& uuid,
                                              std::optional<int> requested_id,
                                              Micros stall_deadline) {
  if (by_uuid_.count(uuid) || pending_.count(uuid))
    return Status::AlreadyExists("uuid '" + uuid + "' in use");
  auto id_taken = [&](int id) { return engines_.count(id) > 0 || pending_ids_.count(id) > 0; };
  int id;
  if (requested_id && *requested_id >= 0 && !id_taken(*requested_id)) {
    id = *requested_id;
    next_id_ = std::max(next_id_, id + 1);
  } else {
    while (id_taken(next_id_)) ++next_id_;
    id = next_id_++;
  }
  pending_[uuid] = Pending{{id, uuid}, stall_deadline};
  pending_ids_[id] = uuid;
  deadlines_.emplace(stall_deadline, uuid);
  return id;
}

std::optional<EngineInfo> EngineRegistry::CompleteRegistration(const std::string& uuid) {
  auto it = pending_.find(uuid);
  if (it == pending_.end()) return std::nullopt;
  EngineInfo info = it->second.info;
  DropPending(it);
  engines_[info.id] = info;
  by_uuid_[uuid] = info.id;
  return info;
}

std::vector<EngineInfo> EngineRegistry::ExpireStalled(Micros now) {
  std::vector<EngineInfo> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto it = pending_.find(deadlines_.begin()->second);
    out.push_back(it->second.info);
    DropPending(it);
  }
  return out;
}

std::optional<EngineInfo> EngineRegistry::Unregister(int id, bool* was_registered) {
  if (auto it = engines_.find(id); it != engines_.end()) {
    EngineInfo info = it->second;
    engines_.erase(it);
    by_uuid_.erase(info.uuid);
    if (was_registered) *was_registered = true;
    return info;
  }
  if (auto pid = pending_ids_.find(id); pid != pending_ids_.end()) {
    auto it = pending_.find(pid->second);
    EngineInfo info = it->second.info;
    DropPending(it);
    if (was_registered) *was_registered = false;
    return info;
  }
  return std::nullopt;
}

std::optional<EngineInfo> EngineRegistry::UnregisterUuid(const std::string& uuid) {
  auto it = by_uuid_.find(uuid);
  if (it == by_uuid_.end()) return std::nullopt;
  return Unregister(it->second);
}

const EngineInfo* EngineRegistry::FindById(int id) const {
  auto it = engines_.find(id);
  return it == engines_.end() ? nullptr : &it->second;
}

const EngineInfo* EngineRegistry::FindByUuid(const std::string& uuid) const {
  auto it = by_uuid_.find(uuid);
  return it == by_uuid_.end() ? nullptr : FindById(it->second);
}

std::optional<Micros> EngineRegistry::NextStallDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

void EngineRegistry::DropPending(std::unordered_map<std::string, Pending>::iterator it) {
  pending_ids_.erase(it->second.info.id);
  deadlines_.erase({it->second.deadline, it->first});
  pending_.erase(it);
}

nlohmann::json EngineRegistry::StateJson() const {
  nlohmann::json engines = nlohmann::json::object();
  for (const auto& [id, info] : engines_) engines[std::to_string(id)] = info.uuid;
  return {{"engines", engines}, {"next_id", next_id_}};
}

Status EngineRegistry::Restore(const nlohmann::json& state) {
  if (!state.is_object() || !state.contains("engines") || !state["engines"].is_object())
    return Status::InvalidArgument("engine state lacks an 'engines' object");
  for (const auto& [key, uuid] : state["engines"].items()) {
    if (!uuid.is_string()) return Status::InvalidArgument("engine uuid is not a string");
    int id;
    try {
      id = std::stoi(key);
    } catch (...) {
      return Status::InvalidArgument("engine id '" + key + "' is not a number");
    }
    engines_[id] = EngineInfo{id, uuid.get<std::string>()};
    by_uuid_[uuid.get<std::string>()] = id;
    next_id_ = std::max(next_id_, id + 1);
  }
  if (state.contains("next_id") && state["next_id"].is_number_integer())
    next_id_ = std::max(next_id_, state["next_id"].get<int>());
  return Status::Ok();
}

}  // namespace shoal::controller
