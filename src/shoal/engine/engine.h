// Engine: one shoal engine process (the child of the watchdog). It registers with the
// controller, answers heartbeats and control requests on an I/O thread that never needs the
// GIL, and runs shell requests (apply_request, execute_request) in the embedded CPython on
// the main thread. See docs/engine.md.
//
// Thread rule: construct and Run() on the main thread; Run() starts and joins the I/O thread.
#pragma once

#include <memory>

#include "shoal/engine/options.h"
#include "shoal/engine/watchdog.h"

namespace shoal::engine {

class Engine {
 public:
  Engine(EngineOptions options, WatchdogPipe watchdog);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Finds the controller, registers, serves until shut down, and returns the process exit
  // code: 0 after a shutdown_request or SIGTERM, 1 when registration is refused or the
  // runtime cannot start, 255 when the controller does not answer the registration in time,
  // 2 when the controller stopped sending heartbeats.
  int Run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal::engine
