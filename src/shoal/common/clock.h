// Clock: the one way shoal code reads time, so tests can choose it.
//
// Monotonic time drives deadlines (heartbeats, task timeouts, grace periods); wall time is
// what goes on the wire (ISO dates in headers and records). Both are microseconds.
// Thread rule: SystemClock is safe from any thread; FakeClock is for single-threaded tests.
#pragma once

#include <chrono>
#include <cstdint>

namespace shoal {

using Micros = int64_t;
constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kMicrosPerMilli = 1'000;

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds on a clock that never goes backwards; the origin is arbitrary.
  virtual Micros MonotonicMicros() const = 0;
  // Microseconds since the Unix epoch, UTC.
  virtual Micros WallMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  Micros MonotonicMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  Micros WallMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance for production wiring.
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
};

// A clock that moves only when told to. Wall time starts at 2026-01-01T00:00:00Z.
class FakeClock final : public Clock {
 public:
  Micros MonotonicMicros() const override { return mono_; }
  Micros WallMicros() const override { return wall_; }
  void Advance(Micros d) {
    mono_ += d;
    wall_ += d;
  }
  void AdvanceMillis(int64_t ms) { Advance(ms * kMicrosPerMilli); }

 private:
  Micros mono_ = 1'000 * kMicrosPerSecond;
  Micros wall_ = 1'767'225'600LL * kMicrosPerSecond;
};

}  // namespace shoal
