// Engine internals shared by engine.cc (start-up, registration, the shell loop on the main
// thread) and engine_io.cc (the I/O thread: heartbeat and control).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unordered_set>
#include <zmq.hpp>

#include "shoal/engine/engine.h"
#include "shoal/engine/python_host.h"
#include "shoal/wire/message.h"
#include "shoal/wire/signer.h"

namespace shoal::engine {

using Json = nlohmann::json;
using wire::Message;

// Messages from the I/O thread to the main thread over the inproc pair. The first frame
// names the command; "clear" carries the decoded control request's frames.
inline constexpr std::string_view kCmdClear = "clear";
inline constexpr std::string_view kCmdAbortQueued = "abort-queued";
inline constexpr std::string_view kCmdStop = "stop";
// Main -> I/O thread: "control" + frames to send on the control socket.
inline constexpr std::string_view kCmdSendControl = "control";

struct Engine::Impl : IopubSink {
  Impl(EngineOptions o, WatchdogPipe w) : options(std::move(o)), watchdog(w) {}

  // --- set before the I/O thread starts, read-only afterwards ---
  EngineOptions options;
  WatchdogPipe watchdog;
  zmq::context_t ctx{1};
  std::string uuid;
  int id = -1;
  int hb_period_ms = 3000;
  RegisteredEngine registered;  // what the watchdog and an unregistration need
  std::unique_ptr<wire::Signer> main_signer, io_signer;  // Check() is per thread
  std::string engine_metadata;                           // {"engine": uuid}
  std::string topic_prefix;                              // "engine.<id>."

  // --- main thread ---
  zmq::socket_t shell, iopub_main, pair_main;
  std::unique_ptr<PythonHost> python;
  std::string current_parent = "{}";  // header of the request being handled
  size_t outputs_published = 0;       // iopub outputs (not status) for that request

  // --- I/O thread ---
  zmq::socket_t control, hb_ping, hb_pong, iopub_io, pair_io;
  std::thread io_thread;
  bool io_stop_started = false;
  std::chrono::steady_clock::time_point io_stop_deadline{};

  // --- shared ---
  std::atomic<bool> busy{false};  // a shell request is running Python
  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{0};
  std::mutex aborted_mu;
  std::unordered_set<std::string> aborted;  // msg_ids from abort_request

  // engine.cc
  Status Register();
  Status ConnectSockets(const Json& connection_info);
  void SecureClient(zmq::socket_t& s) const;
  void ServeShell();
  void HandleShell(Message& req);
  void HandleFromIo();
  void AbortQueued();
  void SendAborted(Message& req);
  bool TakeAborted(const std::string& msg_id);
  Json ReplyMetadata(const Message& req) const;
  void SendShellReply(Message& req, std::string_view reply_type, std::string metadata,
                      const std::string& content, wire::Frames buffers = {});
  void PublishStatus(zmq::socket_t& pub, std::string_view parent, const char* state);
  void Publish(std::string_view msg_type, std::string_view content_json, std::string_view topic,
               wire::Frames buffers, std::string_view metadata_json) override;

  // engine_io.cc
  void IoLoop();
  void HandleControl(Message& req);
  void SendControlReply(Message& req, std::string_view reply_type, const Json& content);
  void BeginStop(int code);
  void SendToMain(std::string_view command, wire::Frames frames = {});

  // Sends frames (the socket's thread only).
  static void SendFrames(zmq::socket_t& s, wire::Frames& frames);
  static bool RecvFrames(zmq::socket_t& s, wire::Frames& out);  // false when nothing waiting
};

// "apply_request" -> "apply_reply"; anything else -> "<prefix>_reply".
std::string ReplyTypeFor(std::string_view request_type);

// A signal number from signal_request content: 2, "2", "SIGINT" or "INT". 0 when unknown.
int ParseSignal(const Json& sig);

}  // namespace shoal::engine
