// EngineRegistry: which engines exist, their ids, and registrations in progress.
//
// Registration is two-phase: BeginRegistration() assigns an id (the requested one when free,
// else the next counter value; ids are never reused) and parks the engine as pending; the
// first heartbeat completes it (CompleteRegistration). Pending registrations that see no
// heartbeat before their deadline are dropped by ExpireStalled(). The state (id -> uuid and
// the id counter) round-trips through the engines state file for --restore.
//
// Pure bookkeeping: no sockets, no clock (times are passed in). Single-threaded.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/status.h"

namespace shoal::controller {

struct EngineInfo {
  int id = -1;
  std::string uuid;
};

class EngineRegistry {
 public:
  // Assigns an id and parks `uuid` as pending until `stall_deadline` (monotonic).
  // kAlreadyExists ("uuid '<uuid>' in use") when the uuid is registered or pending.
  Result<int> BeginRegistration(const std::string& uuid, std::optional<int> requested_id,
                                Micros stall_deadline);

  // The first heartbeat of `uuid`: pending -> registered. nullopt when it was not pending.
  std::optional<EngineInfo> CompleteRegistration(const std::string& uuid);

  // Drops pending registrations whose deadline is <= now; returns them.
  std::vector<EngineInfo> ExpireStalled(Micros now);

  // Removes a registered engine, or cancels a pending registration, by id. nullopt if unknown.
  // `was_registered` tells which.
  std::optional<EngineInfo> Unregister(int id, bool* was_registered = nullptr);
  std::optional<EngineInfo> UnregisterUuid(const std::string& uuid);

  const EngineInfo* FindById(int id) const;
  const EngineInfo* FindByUuid(const std::string& uuid) const;
  bool IsPending(const std::string& uuid) const { return pending_.count(uuid) > 0; }

  // Registered engines by id, ascending.
  const std::map<int, EngineInfo>& engines() const { return engines_; }
  // Every id ever registered (IPython Parallel's queue_request default targets).
  int next_id() const { return next_id_; }
  std::optional<Micros> NextStallDeadline() const;

  // {"engines": {"<id>": "<uuid>", ...}, "next_id": N}
  nlohmann::json StateJson() const;
  // Re-creates registered engines from StateJson(). kInvalidArgument for a malformed state.
  Status Restore(const nlohmann::json& state);

 private:
  struct Pending {
    EngineInfo info;
    Micros deadline;
  };
  void DropPending(std::unordered_map<std::string, Pending>::iterator it);
  std::map<int, EngineInfo> engines_;
  std::unordered_map<std::string, int> by_uuid_;
  std::unordered_map<std::string, Pending> pending_;
  // Indexes over pending_, so that a registration storm of thousands of engines costs
  // O(log n) per engine rather than a scan of every pending one.
  std::map<int, std::string> pending_ids_;              // id -> uuid
  std::set<std::pair<Micros, std::string>> deadlines_;  // (deadline, uuid)
  int next_id_ = 0;
};

}  // namespace shoal::controller
