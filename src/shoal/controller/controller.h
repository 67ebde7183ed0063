// Controller: shoal-controller's one process: every socket of IPython Parallel's controller,
// one event loop, the Hub, the task scheduler, broadcast fan-out and the relays.
//
// Start() binds every socket and writes the connection files (the "ready" signal launchers
// wait for); Run() serves until Stop() is called (from a signal handler via RequestStop(),
// or by a hub shutdown_request), then removes the connection files unless reuse_files.
//
// Thread rule: Start() and Run() on one thread; RequestStop() is async-signal-safe.
#pragma once

#include <memory>
#include <string>

#include "shoal/common/clock.h"
#include "shoal/controller/options.h"
#include "shoal/status.h"

namespace shoal::controller {

class Controller {
 public:
  Controller(ControllerOptions options, const Clock& clock = SystemClock::Instance());
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Creates the profile directory, opens the record store, binds the sockets, writes the
  // connection files. kIOError / kInvalidArgument / kUnavailable (port in use) on failure.
  Status Start();
  // Serves until stopped. Returns OK on a clean stop.
  Status Run();
  // Asks Run() to return soon. Safe from a signal handler.
  static void RequestStop();

  // The paths of the connection files (valid after Start()).
  std::string client_file() const;
  std::string engine_file() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::controller
