// TaskScheduler's public surface, engine lifecycle and timers. The state is described in
// task_scheduler_impl.h; the contract in task_scheduler.h.
#include "shoal/controller/task_scheduler.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shoal/controller/task_scheduler_impl.h"

namespace shoal::controller {

void TaskScheduler::Impl::StrandTasks(Engine& e) {
  std::vector<Job*> stranded(e.pending.begin(), e.pending.end());
  std::sort(stranded.begin(), stranded.end(),
            [](const Job* a, const Job* b) { return a->seq < b->seq; });
  for (Job* j : stranded) {
    ReleaseSlot(e, *j);
    if (!pure && j->retries_left > 0) {
      --j->retries_left;
      Reroute(*j, e.uuid);
    } else {
      sink.DeliverFailure(j->task, TaskFailure::kEngineDied, e.uuid);
      Finalize(*j, false, &e);
    }
  }
}

// ---- public surface ----------------------------------------------------------------------

TaskScheduler::TaskScheduler(Options options, const Clock& clock, TaskSink& sink)
    : impl_(std::make_unique<Impl>(options, clock, sink)) {}

TaskScheduler::~TaskScheduler() = default;

void TaskScheduler::AddEngine(const std::string& engine_uuid) {
  Impl& s = *impl_;
  if (s.live.contains(engine_uuid)) return;
  auto e = std::make_unique<Impl::Engine>();
  e->uuid = engine_uuid;
  e->number = s.next_engine_number++;
  e->stamp = --s.front_stamp;  // the least recently used end
  e->available = true;
  s.available.emplace_hint(s.available.begin(), e->stamp, e.get());
  s.live.emplace(engine_uuid, std::move(e));
  s.Settle(true);
}

void TaskScheduler::RemoveEngine(const std::string& engine_uuid, bool confirmed_dead) {
  Impl& s = *impl_;
  auto it = s.live.find(engine_uuid);
  if (it == s.live.end()) return;
  std::unique_ptr<Impl::Engine> e = std::move(it->second);
  s.live.erase(it);
  if (e->available) s.available.erase(e->stamp);
  e->available = false;
  e->live = false;
  if (!e->pending.empty()) {
    if (confirmed_dead || s.options.stranded_grace <= 0) {
      s.StrandTasks(*e);
    } else {
      e->grace_deadline = s.clock.MonotonicMicros() + s.options.stranded_grace;
      s.dead.push_back(std::move(e));
    }
  }
  // Targeted or following jobs may have lost their only engine: let TryRun judge them.
  s.Settle(true);
}

void TaskScheduler::Submit(TaskSpec spec, std::unique_ptr<TaskPayload> payload) {
  impl_->Submit(std::move(spec), std::move(payload));
}

bool TaskScheduler::OnEngineReply(const std::string& engine_uuid, const std::string& msg_id,
                                  bool ok, bool dependencies_met) {
  Impl& s = *impl_;
  auto it = s.jobs.find(msg_id);
  if (it == s.jobs.end()) return false;
  Impl::Job& j = *it->second;
  if (j.state != Impl::JobState::kRunning || j.engine->uuid != engine_uuid) return false;
  Impl::Engine& e = *j.engine;
  const bool capacity = s.ReleaseSlot(e, j);
  if (!s.pure && !dependencies_met) {
    s.Reroute(j, e.uuid);  // a refusal costs no retry
  } else if (!s.pure && !ok && j.retries_left > 0) {
    --j.retries_left;
    s.Reroute(j, e.uuid);
  } else {
    s.sink.DeliverReply(j.task, e.uuid);
    s.Finalize(j, ok, &e);
  }
  s.Settle(capacity);
  return true;
}

void TaskScheduler::OnTimer() {
  Impl& s = *impl_;
  const Micros now = s.clock.MonotonicMicros();
  for (;;) {
    const bool timeout_due = !s.timeouts.empty() && s.timeouts.begin()->deadline <= now;
    const bool grace_due = !s.dead.empty() && s.dead.front()->grace_deadline <= now;
    if (timeout_due &&
        (!grace_due || s.timeouts.begin()->deadline <= s.dead.front()->grace_deadline)) {
      Impl::Job* j = s.timeouts.begin()->job;
      s.Fail(*j, TaskFailure::kTaskTimeout);  // only parked jobs have timers
    } else if (grace_due) {
      std::unique_ptr<Impl::Engine> e = std::move(s.dead.front());
      s.dead.pop_front();
      s.StrandTasks(*e);
    } else {
      break;
    }
  }
  s.Settle(false);
}

std::optional<Micros> TaskScheduler::NextDeadline() const {
  const Impl& s = *impl_;
  std::optional<Micros> next;
  if (!s.timeouts.empty()) next = s.timeouts.begin()->deadline;
  if (!s.dead.empty()) {
    const Micros grace = s.dead.front()->grace_deadline;
    if (!next || grace < *next) next = grace;
  }
  return next;
}

size_t TaskScheduler::WaitingCount() const { return impl_->ready.size() + impl_->blocked.size(); }

std::vector<std::string> TaskScheduler::PendingOn(const std::string& engine_uuid) const {
  const Impl& s = *impl_;
  std::vector<const Impl::Job*> found;
  auto collect = [&](const Impl::Engine& e) {
    if (e.uuid == engine_uuid) found.insert(found.end(), e.pending.begin(), e.pending.end());
  };
  if (auto it = s.live.find(engine_uuid); it != s.live.end()) collect(*it->second);
  for (const auto& e : s.dead) collect(*e);
  std::sort(found.begin(), found.end(),
            [](const Impl::Job* a, const Impl::Job* b) { return a->seq < b->seq; });
  std::vector<std::string> ids;
  ids.reserve(found.size());
  for (const Impl::Job* j : found) ids.push_back(j->id());
  return ids;
}

std::vector<std::string> TaskScheduler::Engines() const {
  std::vector<const Impl::Engine*> engines;
  for (const auto& [uuid, e] : impl_->live) engines.push_back(e.get());
  std::sort(engines.begin(), engines.end(),
            [](const Impl::Engine* a, const Impl::Engine* b) { return a->stamp < b->stamp; });
  std::vector<std::string> uuids;
  uuids.reserve(engines.size());
  for (const Impl::Engine* e : engines) uuids.push_back(e->uuid);
  return uuids;
}

bool TaskScheduler::IsKnownTask(const std::string& msg_id) const { return impl_->IsKnown(msg_id); }

}  // namespace shoal::controller
