// The watchdog parent ("nanny"): the process launchers start and signal. It forks the real
// engine before anything else exists (no zmq context, no interpreter), then waits for it.
// When the engine ends for any reason other than a shutdown it was asked for, the watchdog
// sends the controller `unregistration_request {"id", "reason"}` at once, so clients get an
// EngineError naming the reason (exit code, signal, out-of-memory kill) within a second
// instead of after missed heartbeats.
//
// Child -> parent: one JSON object per line on a pipe (see WatchdogPipe).
// Thread rule: StartWatchdog must be called before any thread is started.
#pragma once

#include <string>

#include "shoal/status.h"

namespace shoal::engine {

// What the watchdog needs to speak for a dead engine.
struct RegisteredEngine {
  int id = -1;
  std::string uuid;
  std::string registration_url;
  std::string key, signature_scheme;
  std::string curve_serverkey, curve_secretkey, curve_publickey;  // "" = no CurveZMQ
  std::string username;
};

// The child's end of the pipe. Writes never block for long (a few hundred bytes) and
// failures are ignored: the watchdog only loses its chance to report.
class WatchdogPipe {
 public:
  explicit WatchdogPipe(int fd = -1) : fd_(fd) {}
  bool active() const { return fd_ >= 0; }
  void ReportRegistered(const RegisteredEngine& engine);
  // The controller asked this engine to shut down: its exit is not a death.
  void ReportShutdown();

 private:
  void WriteLine(const std::string& line);
  int fd_;
};

// Forks. Returns in the child only, with the pipe to report on; the parent waits for the
// child, forwards SIGTERM/INT/HUP/QUIT/USR1/USR2/ALRM/WINCH to it, reports its death and exits with
// the child's status (128 + signal when killed). kInternal when fork or pipe fail.
Result<WatchdogPipe> StartWatchdog();

// Sends unregistration_request {"id", "reason"} to the controller (used by the watchdog and
// by an engine that gives up on a silent controller). Waits at most `linger_ms`.
Status SendUnregistration(const RegisteredEngine& engine, const std::string& reason,
                          int linger_ms = 3000);

}  // namespace shoal::engine
