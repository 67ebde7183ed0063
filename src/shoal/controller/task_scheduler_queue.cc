// TaskScheduler's queue: parking, dispatch, finishing and the dependency graph.
// The state is described in task_scheduler_impl.h; the contract in task_scheduler.h.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "shoal/controller/task_scheduler_impl.h"

namespace shoal::controller {

bool TaskScheduler::Impl::ImpossibleNow(const Job& j) const {
  const Dependency& follow = j.follow();
  if (follow.all && !follow.empty()) {
    // Every relevant finished followed task must have run on one engine, which must still
    // be usable. Upstream only checks "more than one engine"; the other cases (a followed
    // task that never ran anywhere, its engine gone or excluded) would wait forever there.
    std::optional<uint32_t> only;
    for (const auto& id : follow.ids) {
      auto d = done.find(id);
      if (d == done.end()) continue;
      const bool relevant = d->second.ok ? follow.success : follow.failure;
      if (!relevant) continue;
      const uint32_t engine = d->second.engine;
      if (engine == kNoEngine) return true;
      if (only && *only != engine) return true;
      only = engine;
    }
    if (only) {
      const Engine* e = LiveEngineNumbered(*only);
      if (e == nullptr || Blacklisted(j, e->uuid)) return true;
      if (!j.targets.empty() && !j.targets.contains(e->uuid)) return true;
    }
  }
  if (!j.task.spec.targets.empty()) {
    return std::none_of(
        j.task.spec.targets.begin(), j.task.spec.targets.end(),
        [&](const std::string& t) { return !Blacklisted(j, t) && live.contains(t); });
  }
  return false;
}

void TaskScheduler::Impl::Park(Job& j) {
  j.state = JobState::kWaiting;
  // Pure tasks only ever wait for an engine; their dependencies are ignored.
  j.ready = pure || j.after().CheckWith(Global());
  (j.ready ? ready : blocked).emplace(j.seq, &j);
  if (pure) return;
  ForEachDepId(j, [&](const std::string& id) {
    if (IsDone(id)) return;
    auto& waiters = graph[id];
    // An id in both after and follow is registered once (its two pushes are adjacent).
    if (waiters.empty() || waiters.back() != &j) waiters.push_back(&j);
  });
  if (j.task.spec.timeout_s > 0) {
    // Every park starts a fresh timer; the previous one was dropped when the job left the
    // queue, so only the newest counts. Clamped to a century so huge values cannot overflow.
    constexpr double kMaxTimeoutS = 100.0 * 365 * 24 * 3600;
    const double timeout_s = std::min(j.task.spec.timeout_s, kMaxTimeoutS);
    j.deadline =
        clock.MonotonicMicros() + static_cast<Micros>(std::llround(timeout_s * kMicrosPerSecond));
    j.has_timer = true;
    timeouts.insert({j.deadline, j.seq, &j});
  }
}

void TaskScheduler::Impl::Unpark(Job& j) {
  (j.ready ? ready : blocked).erase(j.seq);
  ForEachDepId(j, [&](const std::string& id) {
    auto it = graph.find(id);
    if (it == graph.end()) return;
    auto& waiters = it->second;
    auto pos = std::find(waiters.begin(), waiters.end(), &j);
    if (pos != waiters.end()) {
      *pos = waiters.back();
      waiters.pop_back();
    }
    if (waiters.empty()) graph.erase(it);
  });
  if (j.has_timer) {
    timeouts.erase({j.deadline, j.seq, &j});
    j.has_timer = false;
  }
  j.state = JobState::kLimbo;
}

void TaskScheduler::Impl::MarkReady(Job& j) {
  if (j.ready) return;
  blocked.erase(j.seq);
  ready.emplace(j.seq, &j);
  j.ready = true;
}

void TaskScheduler::Impl::Dispatch(Job& j, Engine& e) {
  if (j.state == JobState::kWaiting) Unpark(j);
  j.state = JobState::kRunning;
  j.engine = &e;
  e.pending.insert(&j);
  ++e.load;
  // The engine becomes the most recently used. Re-keying the map node avoids allocating.
  auto node = available.extract(e.stamp);
  e.stamp = ++back_stamp;
  if (HasRoom(e)) {
    node.key() = e.stamp;
    available.insert(available.end(), std::move(node));
  } else {
    e.available = false;
  }
  sink.SendToEngine(e.uuid, j.task);
}

TaskScheduler::Impl::RunResult TaskScheduler::Impl::TryRun(Job& j) {
  if (available.empty()) return RunResult::kNotNow;
  cand_loads.clear();
  cand_engines.clear();
  const bool restricted =
      !pure && (!j.targets.empty() || !j.task.blacklist.empty() || !j.follow().empty());
  for (const auto& [stamp, e] : available) {
    if (restricted && !CanRunOn(j, *e)) continue;
    cand_loads.push_back(e->load);
    cand_engines.push_back(e);
    // Later candidates cannot change these schemes' answer (leastload takes the first
    // minimum; 0 is the smallest load), so stop: O(1) picks in the common case.
    if (options.scheme == Scheme::kLru || pure) break;
    if (options.scheme == Scheme::kLeastLoad && e->load == 0) break;
  }
  if (cand_engines.empty()) {
    if (ImpossibleNow(j)) {
      Fail(j, TaskFailure::kImpossibleDependency);
      return RunResult::kFailed;
    }
    return RunResult::kNotNow;
  }
  Dispatch(j, *cand_engines[PickEngine(options.scheme, cand_loads, rng)]);
  return RunResult::kDispatched;
}

void TaskScheduler::Impl::Route(Job& j) {
  if (TryRun(j) == RunResult::kNotNow) Park(j);
}

void TaskScheduler::Impl::Finalize(Job& j, bool ok, Engine* ran_on) {
  auto node = jobs.extract(j.id());
  std::unique_ptr<Job> owned = std::move(node.mapped());
  std::string id = std::move(owned->task.spec.msg_id);
  const Done outcome{ok, ran_on != nullptr ? ran_on->number : kNoEngine};
  if (graph.empty()) {
    Remember(std::move(id), outcome);  // nobody waits: skip the graph update
  } else {
    Remember(id, outcome);
    finished.push_back(std::move(id));
  }
}

void TaskScheduler::Impl::Remember(std::string id, Done outcome) {
  auto [it, inserted] = done.insert_or_assign(std::move(id), outcome);
  if (!inserted) return;  // a resubmitted id: already in done_order
  done_order.push_back(&it->first);
  while (done_order.size() > std::max<size_t>(options.history_limit, 1)) {
    done.erase(*done_order.front());
    done_order.pop_front();
  }
}

void TaskScheduler::Impl::Fail(Job& j, TaskFailure why, const std::string& engine_uuid) {
  if (j.state == JobState::kWaiting) Unpark(j);
  sink.DeliverFailure(j.task, why, engine_uuid);
  Finalize(j, false, nullptr);
}

bool TaskScheduler::Impl::ReleaseSlot(Engine& e, Job& j) {
  e.pending.erase(&j);
  j.engine = nullptr;
  j.state = JobState::kLimbo;
  if (!e.live) return false;
  const bool was_full = !HasRoom(e);
  --e.load;
  if (!was_full) return false;
  e.available = true;
  available.emplace(e.stamp, &e);
  return true;
}

void TaskScheduler::Impl::Reroute(Job& j, const std::string& uuid) {
  j.task.blacklist.insert(uuid);
  if (AllTargetsBlacklisted(j)) {
    Fail(j, TaskFailure::kImpossibleDependency);
    return;
  }
  Route(j);
}

void TaskScheduler::Impl::ProcessDependants(const std::string& id) {
  auto node = graph.extract(id);
  if (node.empty()) return;
  std::vector<Job*>& waiters = node.mapped();
  std::sort(waiters.begin(), waiters.end(),
            [](const Job* a, const Job* b) { return a->seq < b->seq; });
  for (Job* j : waiters) {
    if (j->after().UnreachableWith(Global()) || j->follow().UnreachableWith(Global())) {
      Fail(*j, TaskFailure::kImpossibleDependency);
    } else if (j->ready || j->after().CheckWith(Global())) {
      MarkReady(*j);
      candidates.push_back(j->seq);
    }
  }
}

void TaskScheduler::Impl::TryCandidates() {
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  for (uint64_t seq : candidates) {
    if (available.empty()) break;  // the rest wait for capacity (a full rescan)
    auto it = ready.find(seq);
    if (it != ready.end()) TryRun(*it->second);
  }
  candidates.clear();
}

void TaskScheduler::Impl::RescanReady() {
  for (auto it = ready.begin(); it != ready.end() && !available.empty();) {
    Job* j = it->second;
    ++it;  // TryRun may erase j's entry, never another
    TryRun(*j);
  }
}

void TaskScheduler::Impl::Settle(bool capacity) {
  for (;;) {
    while (!finished.empty()) {
      std::string id = std::move(finished.front());
      finished.pop_front();
      ProcessDependants(id);
    }
    if (capacity) {
      RescanReady();
      capacity = false;
      candidates.clear();
    } else if (!candidates.empty()) {
      TryCandidates();
    }
    if (finished.empty()) return;
  }
}

void TaskScheduler::Impl::ReduceAfter(Job& j) {
  Dependency& after = j.task.spec.after;
  if (after.empty()) return;
  if (after.all) {
    std::erase_if(after.ids, [&](const std::string& id) {
      const IdState state = GlobalState(id);
      return (after.success && state.completed) || (after.failure && state.failed);
    });
  }
  if (after.CheckWith(Global())) after.ids.clear();
}

void TaskScheduler::Impl::Submit(TaskSpec spec, std::unique_ptr<TaskPayload> payload) {
  if (jobs.contains(spec.msg_id)) return;  // see the header: a live duplicate is dropped
  auto owned = std::make_unique<Job>();
  Job& j = *owned;
  j.task.spec = std::move(spec);
  j.task.payload = std::move(payload);
  j.task.submitted = clock.MonotonicMicros();
  j.seq = ++next_seq;
  j.retries_left = std::max(0, j.task.spec.retries);
  if (!pure) {
    for (const auto& t : j.task.spec.targets) j.targets.insert(t);
  }
  jobs.emplace(std::string_view(j.id()), std::move(owned));

  if (pure) {
    Route(j);
    return;
  }
  // Validity first, on the dependencies as given: an id that was never submitted here (or
  // the task itself) is a client error even when other ids would already satisfy an `any`.
  for (const Dependency* dep : {&j.after(), &j.follow()}) {
    if (dep->Contains(j.id()) || std::any_of(dep->ids.begin(), dep->ids.end(),
                                             [&](const std::string& id) { return !IsKnown(id); })) {
      Fail(j, TaskFailure::kInvalidDependency);
      Settle(false);
      return;
    }
  }
  ReduceAfter(j);
  for (const Dependency* dep : {&j.after(), &j.follow()}) {
    if (dep->UnreachableWith(Global())) {
      Fail(j, TaskFailure::kImpossibleDependency);
      Settle(false);
      return;
    }
  }
  if (j.after().empty()) {
    Route(j);
  } else {
    Park(j);
  }
  Settle(false);
}

}  // namespace shoal::controller
