// TaskScheduler: IPython Parallel's load-balancing task scheduler, without sockets.
//
// It owns the queue of waiting tasks, per-engine loads, the dependency graph, retries,
// timeouts and the grace period for tasks stranded on a dead engine. It never touches zmq:
// what it decides goes out through a TaskSink (the controller implements it over sockets;
// tests implement it with a recorder). Time comes from an injected Clock; the owner calls
// OnTimer() at NextDeadline(). The scheduling scheme is a pure function (scheduling_policy.h)
// and dependencies are pure values (dependency.h).
//
// Semantics follow ../../../../shared/reference/ipyparallel-protocol.md section 5 (summarised
// in docs/protocol.md): hwm, LRU order, blacklists, retries never on the same engine, refusals
// (dependencies_met == false) not costing retries, TaskTimeout only while waiting, 5 s grace
// before tasks of a dead engine fail with EngineError (or are retried), InvalidDependency and
// ImpossibleDependency, and dependants dispatched only after a result has been delivered.
//
// Thread rule: single-threaded; every method and every sink call run on the caller's thread,
// and the sink may be called synchronously from inside any method. The sink must not call
// back into the scheduler (queue the work and do it after the method returns).
//
// Ordering: waiting tasks are considered oldest submission first. All tasks that wait only
// for an engine are offered capacity when an engine is added or removed or drops below hwm;
// otherwise a final task only reconsiders the tasks that named it in after/follow.
//
// Cost: with nothing restricted (targets/follow/blacklist), Submit and OnEngineReply do a
// few hash-map operations plus O(log waiting). A dispatch walks the engines that have room in
// LRU order, stopping at the first idle one for leastload (so hwm = 1 is O(1)) and at the
// first for lru/pure; random schemes, and leastload when no engine is idle (hwm 0 or > 1),
// look at all of them. A capacity rescan costs one cheap check per waiting task it passes over
// (tasks that cannot use the free engine). The history of final msg_ids (needed to evaluate
// later dependencies) holds the last `history_limit` of them, about 100 bytes each: upstream
// keeps every one forever, so its memory grows with every task; here a dependency on an
// older task is an unknown id (InvalidDependency), as if the controller had restarted.
//
// Beyond upstream (which would wait forever in these cases): a task whose follow.all names
// finished tasks is ImpossibleDependency also when they ran nowhere (failed in the scheduler),
// or on an engine that is gone, blacklisted for it, or outside its targets. InvalidDependency
// is judged on the dependencies as given, before `after` is reduced, so an unknown id is
// invalid even inside an `any` that other ids already satisfy.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/controller/dependency.h"
#include "shoal/controller/scheduling_policy.h"
#include "shoal/status.h"

namespace shoal::controller {

// What the scheduler carries for its owner (the raw request frames). Opaque here.
struct TaskPayload {
  virtual ~TaskPayload() = default;
};

// What the controller learned from a task request's header and metadata.
struct TaskSpec {
  std::string msg_id;
  std::vector<std::string> targets;  // engine uuids allowed; empty = any
  Dependency after;                  // time dependency
  Dependency follow;                 // location dependency
  double timeout_s = 0;              // <= 0: none; counts only while the task waits
  int retries = 0;                   // < 0 behaves as 0
};

// Parses task metadata ({"after", "follow", "timeout", "targets", "retries", ...}; missing
// keys take defaults, null is the default, other keys are ignored; null metadata is all
// defaults). after/follow: see ParseDependency; timeout: a number; targets: a list of strings;
// retries: an integer (clamped to [0, INT_MAX]). kInvalidArgument for wrong types.
// (Defined in task_spec.cc.)
Result<TaskSpec> ParseTaskSpec(std::string msg_id, const nlohmann::json& metadata);

// A task as the scheduler holds it.
struct Task {
  TaskSpec spec;
  std::unique_ptr<TaskPayload> payload;
  Micros submitted = 0;             // monotonic time of Submit()
  std::set<std::string> blacklist;  // engines that refused or failed it
};

enum class TaskFailure {
  kImpossibleDependency,  // ename "ImpossibleDependency"
  kInvalidDependency,     // ename "InvalidDependency"
  kTaskTimeout,           // ename "TaskTimeout"
  kEngineDied,            // ename "EngineError"
};

// The ename IPython Parallel clients expect for `why`.
const char* TaskFailureName(TaskFailure why);

class TaskSink {
 public:
  virtual ~TaskSink() = default;
  // Send `task` to `engine_uuid` now. The scheduler keeps the Task until it is final, so the
  // sink must copy (not consume) the payload.
  virtual void SendToEngine(const std::string& engine_uuid, const Task& task) = 0;
  // The task is final with the engine reply that OnEngineReply is handling right now:
  // relay that reply to the client.
  virtual void DeliverReply(const Task& task, const std::string& engine_uuid) = 0;
  // The task is final with an error the scheduler made. For kEngineDied, `engine_uuid` is the
  // dead engine; otherwise it is empty.
  virtual void DeliverFailure(const Task& task, TaskFailure why,
                              const std::string& engine_uuid) = 0;
};

class TaskScheduler {
 public:
  struct Options {
    Scheme scheme = Scheme::kLeastLoad;
    int hwm = 1;                                   // max outstanding per engine; 0 = unlimited
    Micros stranded_grace = 5 * kMicrosPerSecond;  // wait before failing a dead engine's tasks
    uint64_t seed = 0;                             // for the random schemes
    size_t history_limit = size_t{1} << 17;        // final msg_ids remembered (>= 1)
    // kPure ignores hwm (unlimited), dependencies, targets, retries and timeouts, and sends
    // round robin in LRU order; tasks still wait while there is no engine, replies are all
    // final, and a dead engine's tasks still fail with kEngineDied after the grace.
    // A negative hwm is treated as 0; stranded_grace <= 0 fails/retries at RemoveEngine.
  };

  // `clock` and `sink` must outlive the scheduler.
  TaskScheduler(Options options, const Clock& clock, TaskSink& sink);
  ~TaskScheduler();
  TaskScheduler(const TaskScheduler&) = delete;
  TaskScheduler& operator=(const TaskScheduler&) = delete;

  // A newly registered engine (inserted at the least-recently-used end). Rescans the queue.
  void AddEngine(const std::string& engine_uuid);
  // An engine is gone: no new tasks go to it; after stranded_grace its pending tasks fail
  // with kEngineDied or are retried elsewhere. `confirmed_dead` (its process is known to
  // have ended, so no reply can come) skips the grace. Unknown uuids are ignored.
  void RemoveEngine(const std::string& engine_uuid, bool confirmed_dead = false);

  // Takes a new task. It is dispatched, parked, or failed (InvalidDependency,
  // ImpossibleDependency) at once, through the sink. spec.after is reduced in place (ids
  // already satisfied are dropped; semantics unchanged). A msg_id that is still queued or
  // running here is a duplicate and is dropped without any sink call.
  void Submit(TaskSpec spec, std::unique_ptr<TaskPayload> payload);

  // An engine answered `msg_id`. `ok` is content.status == "ok"; `dependencies_met` is the
  // reply metadata's flag. Returns false (and does nothing) when that task is not pending on
  // that engine; otherwise the reply is delivered (DeliverReply), or the task is retried
  // elsewhere / re-parked, and then waiting dependants are reconsidered.
  bool OnEngineReply(const std::string& engine_uuid, const std::string& msg_id, bool ok,
                     bool dependencies_met);

  // Runs every timer due at clock.MonotonicMicros(), earliest first: task timeouts and
  // stranded-task grace.
  void OnTimer();
  // When OnTimer next has work, or nullopt.
  std::optional<Micros> NextDeadline() const;

  // Introspection (queue_request, tests).
  size_t WaitingCount() const;  // parked, not on any engine
  // msg_ids sent to that engine (live, or dead within its grace), in submission order.
  std::vector<std::string> PendingOn(const std::string& engine_uuid) const;
  std::vector<std::string> Engines() const;           // current LRU order
  bool IsKnownTask(const std::string& msg_id) const;  // ever submitted here

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::controller
