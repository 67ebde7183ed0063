// HeartMonitor: engine liveness as a pure function of pings and pongs.
//
// A heart becomes known with its first pong that echoes the current (or previous) ping:
// OnPong() says so at once, so an engine's registration completes without waiting for the
// next beat. Every period the controller calls Beat(): known hearts that did not answer
// since the last beat gain a miss, and a heart with more than `max_misses` consecutive
// misses "fails". Beat() then returns the payload of the next ping. Single-threaded, no
// sockets, no clock.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace shoal::controller {

class HeartMonitor {
 public:
  explicit HeartMonitor(int max_misses = 10) : max_misses_(max_misses) {}

  struct BeatResult {
    std::vector<std::string> failed_hearts;  // missed more than max_misses beats in a row
    std::string ping;                        // payload to publish now
  };

  // `elapsed_seconds` becomes the next ping payload (IPython Parallel sends the monitor's
  // running time as text); it must differ between beats.
  BeatResult Beat(double elapsed_seconds);

  // A pong frame from `uuid`. Counts when it echoes the current or the previous ping.
  // Returns true when it is the first counted pong of an unknown heart (which is known,
  // with no misses, from now on).
  bool OnPong(const std::string& uuid, std::string_view payload);

  // Tracks `uuid` as a known heart without a first pong (engines restored with --restore),
  // so that it fails if it never answers.
  void Track(const std::string& uuid) { misses_.try_emplace(uuid, 0); }

  // Stops tracking `uuid` (the engine unregistered).
  void Forget(const std::string& uuid);

  const std::string& current_ping() const { return current_; }
  bool IsBeating(const std::string& uuid) const { return misses_.count(uuid) > 0; }

 private:
  int max_misses_;
  std::string current_, previous_;
  std::unordered_set<std::string> responses_;
  std::unordered_map<std::string, int> misses_;  // known hearts -> consecutive misses
};

}  // namespace shoal::controller
