#include "shoal/controller/dependency.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace shoal::controller {
namespace {

Status AppendId(const nlohmann::json& item, Dependency& dep) {
  if (!item.is_string()) {
    return Status::InvalidArgument("dependency ids must be msg_id strings, got " +
                                   std::string(item.type_name()));
  }
  const std::string& id = item.get_ref<const std::string&>();
  // Lists are short (a client's own AsyncResults), so a linear duplicate check is cheaper
  // than building a set.
  if (!dep.Contains(id)) dep.ids.push_back(id);
  return Status::Ok();
}

Status AppendIds(const nlohmann::json& list, Dependency& dep) {
  if (list.is_null()) return Status::Ok();
  if (list.is_string()) return AppendId(list, dep);
  if (!list.is_array()) {
    return Status::InvalidArgument("dependencies must be a list of msg_ids, got " +
                                   std::string(list.type_name()));
  }
  dep.ids.reserve(list.size());
  for (const auto& item : list) SHOAL_RETURN_NOT_OK(AppendId(item, dep));
  return Status::Ok();
}

Status ReadFlag(const nlohmann::json& object, const char* key, bool& flag) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) {
    return Status::InvalidArgument(std::string("dependency '") + key + "' must be a bool, got " +
                                   it->type_name());
  }
  flag = it->get<bool>();
  return Status::Ok();
}

}  // namespace

bool Dependency::Contains(const std::string& id) const {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool Dependency::Check(const IdSet& completed, const IdSet& failed) const {
  return CheckWith([&](const std::string& id) {
    return IdState{completed.contains(id), failed.contains(id)};
  });
}

bool Dependency::Unreachable(const IdSet& completed, const IdSet& failed) const {
  return UnreachableWith([&](const std::string& id) {
    return IdState{completed.contains(id), failed.contains(id)};
  });
}

Result<Dependency> ParseDependency(const nlohmann::json& wire) {
  Dependency dep;
  if (wire.is_object()) {
    auto it = wire.find("dependencies");
    if (it != wire.end()) SHOAL_RETURN_NOT_OK(AppendIds(*it, dep));
    SHOAL_RETURN_NOT_OK(ReadFlag(wire, "all", dep.all));
    SHOAL_RETURN_NOT_OK(ReadFlag(wire, "success", dep.success));
    SHOAL_RETURN_NOT_OK(ReadFlag(wire, "failure", dep.failure));
    if (!dep.success && !dep.failure) {
      return Status::InvalidArgument("a dependency must be satisfied by success, failure or both");
    }
    return dep;
  }
  SHOAL_RETURN_NOT_OK(AppendIds(wire, dep));
  return dep;
}

}  // namespace shoal::controller
