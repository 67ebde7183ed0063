// PythonHost: the embedded CPython of an engine, and the bridge to shoal._engine.runtime
// (the contract is docs/engine.md).
//
// Thread rule: construct, call and destroy on the main thread only. The GIL is held by the
// main thread except inside an Unlocked scope (which the engine opens around blocking
// waits). RequestFlush() and RequestExit() are the only members safe from other threads.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "shoal/status.h"

namespace shoal::engine {

using Frames = std::vector<zmq::message_t>;

// Where iopub messages made by Python go: the engine's main-thread PUB socket, with the
// request being handled as parent. Called on the main thread with the GIL held.
class IopubSink {
 public:
  virtual ~IopubSink() = default;
  virtual void Publish(std::string_view msg_type, std::string_view content_json,
                       std::string_view topic, Frames buffers, std::string_view metadata_json) = 0;
};

struct PythonConfig {
  std::string python;      // interpreter whose prefix/venv/sys.path the engine adopts
  std::string shoal_path;  // directory holding the `shoal` package
  int engine_id = 0;
  std::string engine_uuid;
  nlohmann::json runtime_options = nlohmann::json::object();  // EngineRuntime's `options`
};

struct ApplyOutcome {
  bool ok = false;
  std::string error_json;  // the error reply content when !ok
  std::string ename;       // its ename when !ok
  Frames result;           // serialized result when ok
};

struct ExecuteOutcome {
  std::string status;  // "ok", "error" or "aborted"
  std::string content_json;
};

class PythonHost {
 public:
  // Starts the interpreter, imports the runtime and builds EngineRuntime. kUnavailable with
  // the Python traceback when the runtime cannot be imported or built. `sink` must outlive
  // the host. At most one PythonHost per process.
  static Result<std::unique_ptr<PythonHost>> Start(const PythonConfig& config, IopubSink* sink);
  ~PythonHost();

  // Runs an apply_request's payload. Never fails: internal errors become error content.
  // SIGINT raises KeyboardInterrupt only during the call.
  ApplyOutcome Apply(const std::string& msg_id, const std::string& serializer, Frames buffers);
  ExecuteOutcome Execute(const std::string& msg_id, std::string_view content_json);
  // clear_request: empties the user namespace.
  Status Clear();
  void FlushStreams();
  // Drops references to result buffers that zmq has finished sending.
  void ReleaseSentBuffers();
  bool HasUnreleasedBuffers() const;

  // From any thread: ask the main thread to flush streams / raise SystemExit at the next
  // bytecode boundary of whatever Python code runs now.
  static void RequestFlush();
  static void RequestExit();

  // Releases the GIL for the scope (blocking waits).
  class Unlocked {
   public:
    Unlocked();
    ~Unlocked();
    Unlocked(const Unlocked&) = delete;
    Unlocked& operator=(const Unlocked&) = delete;

   private:
    void* state_;
  };

  // The default interpreter: $VIRTUAL_ENV/bin/python when set, else the build's Python.
  static std::string DefaultPython();
  // The directory of the `shoal` package: $SHOAL_PYTHON_DIR, the source tree's python/, or
  // <exe>/../lib/shoal/python.
  static std::string DefaultShoalPath();

 private:
  PythonHost() = default;
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace shoal::engine
