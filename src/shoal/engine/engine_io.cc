// The engine's I/O thread: heartbeat echo, the controller watchdog, control requests, and
// the periodic stream flush while user code runs. It never takes the GIL.
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "shoal/common/log.h"
#include "shoal/engine/engine_impl.h"
#include "shoal/wire/json_get.h"
#include "shoal/wire/msg_types.gen.h"

namespace shoal::engine {

namespace msg = wire::msg;
using SteadyClock = std::chrono::steady_clock;

int ParseSignal(const Json& sig) {
  if (sig.is_number_integer()) {
    int n = sig.get<int>();
    return n > 0 && n < NSIG ? n : 0;
  }
  if (!sig.is_string()) return 0;
  std::string name = sig.get<std::string>();
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
    return ParseSignal(Json(std::stoi(name)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int n = 1; n < NSIG; ++n) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev && name == abbrev) return n;
  }
  return 0;
}

void Engine::Impl::SendToMain(std::string_view command, wire::Frames frames) {
  frames.insert(frames.begin(), zmq::message_t(command.data(), command.size()));
  SendFrames(pair_io, frames);
}

void Engine::Impl::BeginStop(int code) {
  if (io_stop_started) return;
  io_stop_started = true;
  exit_code = code;
  stopping = true;
  SendToMain(kCmdStop);
  // User code may be running for hours: interrupt it at the next bytecode.
  if (busy) PythonHost::RequestExit();
  io_stop_deadline = SteadyClock::now() + std::chrono::seconds(3);
}

void Engine::Impl::SendControlReply(Message& req, std::string_view reply_type,
                                    const Json& content) {
  std::vector<zmq::message_t> ids;
  for (size_t i = 0; i < req.delim; ++i) ids.push_back(std::move(req.frames[i]));
  std::string header = wire::Dump(wire::MakeHeader(reply_type, uuid, options.username));
  Json md = {{"engine", uuid}, {"status", wire::GetString(content, "status")}};
  wire::Frames f = wire::EncodeParts(ids, header, req.frame(wire::kHeaderOffset), wire::Dump(md),
                                     wire::Dump(content), *io_signer);
  SendFrames(control, f);
}

void Engine::Impl::HandleControl(Message& req) {
  const std::string type = req.msg_type();
  if (type == msg::kClearRequest) {
    // Needs Python: the main thread runs it before the next shell request.
    SendToMain(kCmdClear, std::move(req.frames));
    return;
  }
  std::string parent(req.frame(wire::kHeaderOffset));
  PublishStatus(iopub_io, parent, "busy");
  const Json& c = req.content;
  if (type == msg::kAbortRequest) {
    const Json* ids = wire::Find(c, "msg_ids");
    if (ids && ids->is_array() && !ids->empty()) {
      std::lock_guard<std::mutex> lock(aborted_mu);
      for (const Json& m : *ids)
        if (m.is_string()) aborted.insert(m.get<std::string>());
    } else if (ids && ids->is_string()) {
      std::lock_guard<std::mutex> lock(aborted_mu);
      aborted.insert(ids->get<std::string>());
    } else {
      SendToMain(kCmdAbortQueued);
    }
    SendControlReply(req, msg::kAbortReply, {{"status", "ok"}});
  } else if (type == msg::kEngineShutdownRequest) {
    Json content = {{"status", "ok"}, {"restart", wire::GetBool(c, "restart", false)}};
    std::string topic = topic_prefix + "shutdown";
    std::vector<zmq::message_t> t;
    t.emplace_back(topic.data(), topic.size());
    std::string header =
        wire::Dump(wire::MakeHeader(msg::kIopubShutdownReply, uuid, options.username));
    // The hub unregisters the engine whose uuid is this message's session.
    wire::Frames pub =
        wire::EncodeParts(t, header, parent, engine_metadata, wire::Dump(content), *io_signer);
    SendControlReply(req, msg::kShutdownReply, content);
    SendFrames(iopub_io, pub);
    SHOAL_LOG(Info) << "engine " << id << " shutting down on request";
    watchdog.ReportShutdown();
    BeginStop(0);
  } else if (type == msg::kSignalRequest) {
    const Json* sig = wire::Find(c, "sig");
    int n = sig ? ParseSignal(*sig) : 0;
    if (n == 0) {
      SendControlReply(req, msg::kSignalReply,
                       {{"status", "error"},
                        {"ename", "ValueError"},
                        {"evalue", "unknown signal " + (sig ? sig->dump() : std::string("(none)"))},
                        {"traceback", Json::array()}});
    } else {
      SHOAL_LOG(Info) << "delivering signal " << n << " as asked";
      kill(getpid(), n);
      SendControlReply(req, msg::kSignalReply, {{"status", "ok"}});
    }
  } else {
    SendControlReply(req, ReplyTypeFor(type),
                     {{"status", "error"},
                      {"ename", "NotImplementedError"},
                      {"evalue", "shoal-engine does not handle " + type},
                      {"traceback", Json::array()}});
  }
  PublishStatus(iopub_io, parent, "idle");
}

void Engine::Impl::IoLoop() {
  const auto check_period = std::chrono::milliseconds(hb_period_ms + 500);
  constexpr auto kFlushPeriod = std::chrono::milliseconds(200);
  auto next_check = SteadyClock::now() + check_period;
  auto last_flush = SteadyClock::now();
  bool ping_seen = false, was_busy = false;
  int misses = 0;
  const wire::DecodeOptions opts{
      .parse_parent = false, .parse_metadata = false, .parse_content = true};
  for (;;) {
    auto now = SteadyClock::now();
    auto wake = next_check;
    if (busy) wake = std::min(wake, last_flush + kFlushPeriod);
    if (io_stop_started) wake = std::min(wake, io_stop_deadline);
    auto timeout = std::max<long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1);
    zmq::pollitem_t items[] = {{hb_ping.handle(), 0, ZMQ_POLLIN, 0},
                               {control.handle(), 0, ZMQ_POLLIN, 0},
                               {pair_io.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(timeout));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        SHOAL_LOG(Critical) << "I/O thread: " << e.what();
        _exit(1);
      }
      continue;
    }
    wire::Frames frames;
    if (items[0].revents & ZMQ_POLLIN) {
      // Echo every ping at once: this is what keeps the engine alive while Python is busy.
      while (RecvFrames(hb_ping, frames)) {
        SendFrames(hb_pong, frames);
        ping_seen = true;
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      while (RecvFrames(control, frames)) {
        Message req;
        Status st = wire::Decode(std::move(frames), io_signer.get(), opts, req);
        if (!st.ok()) {
          SHOAL_LOG(Warn) << "dropped a control message: " << st.message();
          continue;
        }
        HandleControl(req);
      }
    }
    if (items[2].revents & ZMQ_POLLIN) {
      while (RecvFrames(pair_io, frames)) {
        std::string_view cmd = wire::View(frames[0]);
        if (cmd == kCmdStop) {
          control.close();
          hb_ping.close();
          hb_pong.close();
          iopub_io.close();
          pair_io.close();
          return;
        }
        if (cmd == kCmdSendControl) {
          frames.erase(frames.begin());
          SendFrames(control, frames);
        }
      }
    }
    now = SteadyClock::now();
    if (now >= next_check) {
      misses = ping_seen ? 0 : misses + 1;
      ping_seen = false;
      next_check = now + check_period;
      if (options.max_heartbeat_misses > 0 && misses >= options.max_heartbeat_misses &&
          !io_stop_started) {
        SHOAL_LOG(Error) << "no heartbeat from the controller for " << misses
                         << " checks; giving up";
        (void)SendUnregistration(registered, "lost contact with the controller", 1000);
        watchdog.ReportShutdown();
        BeginStop(2);
      }
    }
    if (busy) {
      if (!was_busy) {
        was_busy = true;
        last_flush = now;
      } else if (now - last_flush >= kFlushPeriod) {
        PythonHost::RequestFlush();
        last_flush = now;
      }
    } else {
      was_busy = false;
    }
    if (io_stop_started && now >= io_stop_deadline) {
      SHOAL_LOG(Warn) << "user code did not stop within 3 s; exiting anyway";
      _exit(exit_code);
    }
  }
}

}  // namespace shoal::engine
