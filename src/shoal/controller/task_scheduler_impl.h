// Internal to shoal_scheduler: TaskScheduler::Impl, the scheduler's state, shared by
// task_scheduler.cc (public surface, engine lifecycle, timers) and task_scheduler_queue.cc
// (queue, dispatch, dependency graph). Not part of the contract; see task_scheduler.h.
//
// Layout of the state (all owned by Impl):
//   jobs        every task not final yet, by msg_id; a job is waiting (parked), running (on
//               exactly one engine), or briefly in limbo while it is being moved.
//   live        registered engines by uuid; `dead`: engines removed but still holding tasks,
//               waiting for their grace period, in removal order (= deadline order).
//   available   live engines with spare capacity (load < hwm, or all when hwm == 0), keyed by
//               an LRU stamp, so iteration is the LRU order restricted to useful engines and a
//               busy cluster never pays for scanning full engines.
//   ready       parked jobs whose `after` is met (waiting for an engine), by submission order;
//   blocked     parked jobs whose `after` is not met. Only ready is rescanned when capacity
//               appears; blocked jobs move only through graph when a dependency finishes.
//   graph       unfinished msg_id -> parked jobs naming it in after or follow (eagerly kept
//               exact: a job leaves every list when it leaves the queue, which is also what
//               prevents upstream's double dispatch).
//   done        msg_id -> outcome and engine for the last history_limit final tasks: the
//               history that after/follow are evaluated against (one insert per task);
//   done_order  the keys of done, oldest first (pointers to the map's stable keys), so the
//               oldest is forgotten when the history is full.
//   timeouts    one entry per parked job with a timeout (newest park only).
//   finished    msg_ids that became final and whose dependants have not been looked at yet;
//               drained by Settle() so cascades are iterative and always run after the
//               DeliverReply/DeliverFailure of the task they depend on.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "shoal/controller/task_scheduler.h"

namespace shoal::controller {

struct TaskScheduler::Impl {
  struct Engine;

  enum class JobState { kLimbo, kWaiting, kRunning };

  struct Job {
    Task task;
    uint64_t seq = 0;  // submission order: "oldest first" everywhere
    JobState state = JobState::kLimbo;
    bool ready = false;        // while waiting: in `ready` (after met) rather than `blocked`
    Engine* engine = nullptr;  // while running
    int retries_left = 0;
    bool has_timer = false;
    Micros deadline = 0;
    // Views into task.spec.targets, for O(1) membership tests per engine.
    std::unordered_set<std::string_view> targets;

    const std::string& id() const { return task.spec.msg_id; }
    const Dependency& after() const { return task.spec.after; }
    const Dependency& follow() const { return task.spec.follow; }
  };

  struct Engine {
    std::string uuid;
    uint32_t number = 0;  // unique per registration; what Done::engine records
    int load = 0;
    int64_t stamp = 0;  // LRU position: smaller = less recently used
    bool live = true;
    bool available = false;  // listed in `available`
    Micros grace_deadline = 0;
    std::unordered_set<Job*> pending;
  };

  struct TimerKey {
    Micros deadline;
    uint64_t seq;
    Job* job;
    bool operator<(const TimerKey& o) const {
      return deadline != o.deadline ? deadline < o.deadline : seq < o.seq;
    }
  };

  // The outcome of a final task. One map of these replaces upstream's all_completed,
  // all_failed, completed[engine], failed[engine] and destinations: one insert per task.
  static constexpr uint32_t kNoEngine = UINT32_MAX;  // failed in the scheduler
  struct Done {
    bool ok = false;
    uint32_t engine = kNoEngine;  // Engine::number of the engine whose reply made it final
  };

  enum class RunResult { kDispatched, kNotNow, kFailed };

  Impl(Options o, const Clock& c, TaskSink& s)
      : options(o), clock(c), sink(s), rng(o.seed), pure(o.scheme == Scheme::kPure) {
    if (pure || options.hwm < 0) options.hwm = 0;  // pure is a plain device: no hwm
  }

  Options options;
  const Clock& clock;
  TaskSink& sink;
  Rng rng;
  const bool pure;

  std::unordered_map<std::string_view, std::unique_ptr<Job>> jobs;  // key views job's msg_id
  std::unordered_map<std::string, std::unique_ptr<Engine>> live;
  std::deque<std::unique_ptr<Engine>> dead;
  std::map<int64_t, Engine*> available;
  int64_t front_stamp = 0;
  int64_t back_stamp = 0;
  uint32_t next_engine_number = 0;
  uint64_t next_seq = 0;

  std::unordered_map<std::string, Done> done;  // the last history_limit final msg_ids
  std::deque<const std::string*> done_order;   // keys of done, oldest first

  std::map<uint64_t, Job*> ready, blocked;
  std::unordered_map<std::string, std::vector<Job*>> graph;
  std::set<TimerKey> timeouts;
  std::deque<std::string> finished;
  std::vector<uint64_t> candidates;  // seqs of ready jobs to try after a graph update

  // Scratch buffers for TryRun, kept to avoid allocating per dispatch.
  std::vector<int> cand_loads;
  std::vector<Engine*> cand_engines;

  // ---- small predicates --------------------------------------------------------------------

  bool HasRoom(const Engine& e) const { return options.hwm == 0 || e.load < options.hwm; }

  bool IsDone(const std::string& id) const { return done.contains(id); }

  // Outcome of `id` anywhere (upstream's all_completed / all_failed).
  IdState GlobalState(const std::string& id) const {
    auto it = done.find(id);
    if (it == done.end()) return {};
    return {it->second.ok, !it->second.ok};
  }
  auto Global() const {
    return [this](const std::string& id) { return GlobalState(id); };
  }
  // Outcome of `id` on engine `e` only (upstream's completed[e] / failed[e]).
  auto On(const Engine& e) const {
    return [this, number = e.number](const std::string& id) {
      auto it = done.find(id);
      if (it == done.end() || it->second.engine != number) return IdState{};
      return IdState{it->second.ok, !it->second.ok};
    };
  }

  bool IsKnown(const std::string& id) const { return jobs.contains(id) || IsDone(id); }

  bool Blacklisted(const Job& j, const std::string& uuid) const {
    return j.task.blacklist.contains(uuid);
  }

  bool AllTargetsBlacklisted(const Job& j) const {
    if (j.task.spec.targets.empty()) return false;
    return std::all_of(j.task.spec.targets.begin(), j.task.spec.targets.end(),
                       [&](const std::string& t) { return Blacklisted(j, t); });
  }

  bool CanRunOn(const Job& j, const Engine& e) const {
    if (Blacklisted(j, e.uuid)) return false;
    if (!j.targets.empty() && !j.targets.contains(e.uuid)) return false;
    return j.follow().CheckWith(On(e));
  }

  const Engine* LiveEngineNumbered(uint32_t number) const {
    for (const auto& [uuid, e] : live) {
      if (e->number == number) return e.get();
    }
    return nullptr;
  }

  template <typename F>
  void ForEachDepId(const Job& j, F&& f) const {
    for (const auto& id : j.after().ids) f(id);
    for (const auto& id : j.follow().ids) f(id);
  }

  // ---- queue, dispatch and graph (task_scheduler_queue.cc) ---------------------------------

  // Called when some engine has room but none suits `j`: can it never run?
  bool ImpossibleNow(const Job& j) const;

  // Puts `j` in ready/blocked, registers it in graph, starts its timer. Unpark undoes all of
  // it (on dispatch or failure); MarkReady moves it from blocked to ready.
  void Park(Job& j);
  void Unpark(Job& j);
  void MarkReady(Job& j);

  // upstream maybe_run: picks among engines with room that suit the job and dispatches, or
  // fails it as impossible, or reports that it cannot run now (the caller parks it).
  RunResult TryRun(Job& j);
  void Dispatch(Job& j, Engine& e);
  // Runs a job that is in no queue (new, refused, failed with retries left) or parks it.
  void Route(Job& j);

  // Removes `j` for good after its reply or failure has been delivered. `ran_on` is the engine
  // whose reply made it final (null for scheduler-made failures).
  void Finalize(Job& j, bool ok, Engine* ran_on);
  void Remember(std::string id, Done outcome);
  // A scheduler-made final failure (reply through DeliverFailure).
  void Fail(Job& j, TaskFailure why, const std::string& engine_uuid = {});
  // Takes `j` off the engine it ran on. Returns true when that gave a live engine room again.
  bool ReleaseSlot(Engine& e, Job& j);
  // A refusal, or a failure with retries left: never again on `uuid`.
  void Reroute(Job& j, const std::string& uuid);

  // `id` just became final: fail the dependants it made unreachable and remember those whose
  // `after` is now met (candidates), oldest first.
  void ProcessDependants(const std::string& id);
  // Tries the candidates, oldest first, while some engine has room.
  void TryCandidates();
  // Offers new capacity to every ready job, oldest first, until it is used up.
  void RescanReady();
  // Brings the queue up to date after an event: drains `finished`, then tries candidates, or
  // every ready job when `capacity` (an engine was added/removed or got room); repeats while
  // that made more tasks final.
  void Settle(bool capacity);

  // upstream: drop the ids of `after` that are already satisfied, and empty it when met, so
  // later checks are cheap. Semantics are unchanged.
  void ReduceAfter(Job& j);
  void Submit(TaskSpec spec, std::unique_ptr<TaskPayload> payload);

  // ---- engine lifecycle (task_scheduler.cc) ------------------------------------------------

  // After a dead engine's grace: every task still there gets what a failed reply would get.
  void StrandTasks(Engine& e);
};

}  // namespace shoal::controller
