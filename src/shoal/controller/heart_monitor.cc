#include "shoal/controller/heart_monitor.h"

#include <cstdio>

namespace shoal::controller {

HeartMonitor::BeatResult HeartMonitor::Beat(double elapsed_seconds) {
  BeatResult r;
  for (const auto& uuid : responses_) {
    if (auto it = misses_.find(uuid); it != misses_.end()) it->second = 0;
  }
  for (auto it = misses_.begin(); it != misses_.end();) {
    if (!responses_.count(it->first) && ++it->second > max_misses_) {
      r.failed_hearts.push_back(it->first);
      it = misses_.erase(it);
    } else {
      ++it;
    }
  }
  responses_.clear();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", elapsed_seconds);
  previous_ = std::move(current_);
  current_ = buf;
  if (current_ == previous_) current_ += "1";  // keep consecutive pings distinct
  r.ping = current_;
  return r;
}

bool HeartMonitor::OnPong(const std::string& uuid, std::string_view payload) {
  if ((current_.empty() || payload != current_) && (previous_.empty() || payload != previous_))
    return false;
  responses_.insert(uuid);
  return misses_.try_emplace(uuid, 0).second;
}

void HeartMonitor::Forget(const std::string& uuid) {
  misses_.erase(uuid);
  responses_.erase(uuid);
}

}  // namespace shoal::controller
