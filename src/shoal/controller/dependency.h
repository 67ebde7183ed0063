// Dependency: IPython Parallel's msg_id dependency (ipyparallel.controller.dependency).
//
// A set of task msg_ids plus three flags. `all` says whether every id or just one must be
// satisfied; `success` / `failure` say which outcomes satisfy an id (at least one is true).
// The scheduler uses two of them per task: `after` (time: evaluated against every finished
// task) and `follow` (location: evaluated against the tasks finished on one engine).
//
// Thread rule: values; pure functions.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "shoal/status.h"

namespace shoal::controller {

// A set of task msg_ids (finished successfully, or failed).
using IdSet = std::unordered_set<std::string>;

// What is known about one msg_id when a dependency is evaluated.
struct IdState {
  bool completed = false;  // finished successfully
  bool failed = false;     // finished with an error (or failed in the scheduler)
};

struct Dependency {
  std::vector<std::string> ids;  // distinct msg_ids, in wire order
  bool all = true;
  bool success = true;
  bool failure = false;

  bool empty() const { return ids.empty(); }
  bool Contains(const std::string& id) const;

  // Met? Empty is always met. An id counts when it is in `completed` (if success) or in
  // `failed` (if failure); `all` needs every id to count, any needs one.
  bool Check(const IdSet& completed, const IdSet& failed) const;
  // Can it never be met? Empty never is. An id is lost when it is in `completed` (if not
  // success) or `failed` (if not failure); `all` is unreachable once one id is lost, any once
  // every id is.
  bool Unreachable(const IdSet& completed, const IdSet& failed) const;

  // The same two tests with the outcomes supplied by `state_of(const std::string&) -> IdState`,
  // so a caller holding one msg_id -> outcome map (the scheduler) needs one lookup per id
  // instead of keeping separate sets.
  template <typename StateOf>
  bool CheckWith(StateOf&& state_of) const {
    if (ids.empty()) return true;
    for (const auto& id : ids) {
      const IdState s = state_of(id);
      const bool counts = (success && s.completed) || (failure && s.failed);
      if (all && !counts) return false;
      if (!all && counts) return true;
    }
    return all;
  }
  template <typename StateOf>
  bool UnreachableWith(StateOf&& state_of) const {
    if (ids.empty()) return false;
    for (const auto& id : ids) {
      const IdState s = state_of(id);
      const bool lost = (!success && s.completed) || (!failure && s.failed);
      if (all && lost) return true;
      if (!all && !lost) return false;
    }
    return !all;
  }
};

// Parses the wire form: null (empty); a list of msg_id strings (all, success, not failure);
// a single msg_id string (as upstream's Dependency(str)); or an object
// {"dependencies": [...], "all": b, "success": b, "failure": b} whose missing or null keys
// take those defaults. Duplicate ids are dropped. kInvalidArgument for any other shape or
// element type, and for success == failure == false.
Result<Dependency> ParseDependency(const nlohmann::json& wire);

}  // namespace shoal::controller
