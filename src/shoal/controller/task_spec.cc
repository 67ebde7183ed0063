// ParseTaskSpec and TaskFailureName (declared in task_scheduler.h): the metadata side of a
// load-balanced task request, kept apart from the scheduler's state machine.
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "shoal/controller/task_scheduler.h"

namespace shoal::controller {
namespace {

Status ParseDependencyKey(const nlohmann::json& metadata, const char* key, Dependency& out) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return Status::Ok();
  auto dep = ParseDependency(*it);
  if (!dep.ok()) return dep.status().WithContext(std::string("metadata '") + key + "'");
  out = std::move(dep).value();
  return Status::Ok();
}

Status WrongType(const char* key, const char* want, const nlohmann::json& got) {
  return Status::InvalidArgument(std::string("metadata '") + key + "' must be " + want + ", got " +
                                 got.type_name());
}

}  // namespace

Result<TaskSpec> ParseTaskSpec(std::string msg_id, const nlohmann::json& metadata) {
  TaskSpec spec;
  spec.msg_id = std::move(msg_id);
  if (metadata.is_null()) return spec;
  if (!metadata.is_object()) {
    return Status::InvalidArgument(std::string("task metadata must be an object, got ") +
                                   metadata.type_name());
  }

  SHOAL_RETURN_NOT_OK(ParseDependencyKey(metadata, "after", spec.after));
  SHOAL_RETURN_NOT_OK(ParseDependencyKey(metadata, "follow", spec.follow));

  if (auto it = metadata.find("timeout"); it != metadata.end() && !it->is_null()) {
    // Booleans are not numbers in nlohmann::json, so `true` is rejected here.
    if (!it->is_number()) return WrongType("timeout", "a number of seconds", *it);
    spec.timeout_s = it->get<double>();
  }

  if (auto it = metadata.find("targets"); it != metadata.end() && !it->is_null()) {
    if (!it->is_array()) return WrongType("targets", "a list of engine uuids", *it);
    spec.targets.reserve(it->size());
    for (const auto& target : *it) {
      if (!target.is_string()) return WrongType("targets", "a list of engine uuids", target);
      spec.targets.push_back(target.get<std::string>());
    }
  }

  if (auto it = metadata.find("retries"); it != metadata.end() && !it->is_null()) {
    if (!it->is_number_integer()) return WrongType("retries", "an integer", *it);
    // Clamp rather than overflow; a negative count behaves like 0, as upstream.
    const int64_t retries = it->is_number_unsigned()
                                ? static_cast<int64_t>(std::min<uint64_t>(
                                      it->get<uint64_t>(), std::numeric_limits<int>::max()))
                                : it->get<int64_t>();
    spec.retries =
        static_cast<int>(std::clamp<int64_t>(retries, 0, std::numeric_limits<int>::max()));
  }
  return spec;
}

const char* TaskFailureName(TaskFailure why) {
  switch (why) {
    case TaskFailure::kImpossibleDependency:
      return "ImpossibleDependency";
    case TaskFailure::kInvalidDependency:
      return "InvalidDependency";
    case TaskFailure::kTaskTimeout:
      return "TaskTimeout";
    case TaskFailure::kEngineDied:
      return "EngineError";
  }
  return "UnknownError";
}

}  // namespace shoal::controller
