// Engine start-up, registration and the shell loop on the main thread.
#include "shoal/engine/engine.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "shoal/common/clock.h"
#include "shoal/common/log.h"
#include "shoal/engine/controller_address.h"
#include "shoal/engine/engine_impl.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/iso_date.h"
#include "shoal/wire/json_get.h"
#include "shoal/wire/msg_types.gen.h"

namespace shoal::engine {

namespace msg = wire::msg;

std::string ReplyTypeFor(std::string_view request_type) {
  std::string t(request_type);
  auto pos = t.rfind("_request");
  if (pos != std::string::npos && pos + 8 == t.size()) return t.substr(0, pos) + "_reply";
  return t + "_reply";
}

Engine::Engine(EngineOptions options, WatchdogPipe watchdog)
    : impl_(std::make_unique<Impl>(std::move(options), watchdog)) {}

Engine::~Engine() = default;

void Engine::Impl::SendFrames(zmq::socket_t& s, wire::Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    s.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

bool Engine::Impl::RecvFrames(zmq::socket_t& s, wire::Frames& out) {
  out.clear();
  for (;;) {
    zmq::message_t m;
    if (!s.recv(m, out.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none))
      return !out.empty();
    bool more = m.more();
    out.push_back(std::move(m));
    if (!more) return true;
  }
}

void Engine::Impl::SecureClient(zmq::socket_t& s) const {
  if (registered.curve_serverkey.empty()) return;
  s.set(zmq::sockopt::curve_serverkey, registered.curve_serverkey);
  s.set(zmq::sockopt::curve_publickey, registered.curve_publickey);
  s.set(zmq::sockopt::curve_secretkey, registered.curve_secretkey);
}

// ---------------------------------------------------------------------------------------
// Registration

Status Engine::Impl::Register() {
  auto where = LocateController(options);
  if (!where.ok()) return where.status();
  const wire::ConnectionInfo& info = where->info;
  auto signer = wire::Signer::Create(info.key, info.signature_scheme);
  if (!signer.ok()) return signer.status();
  main_signer = std::move(*signer);
  auto second = wire::Signer::Create(info.key, info.signature_scheme);
  io_signer = std::move(*second);

  uuid = options.ident.empty() ? wire::NewSessionId() : options.ident;
  registered.uuid = uuid;
  registered.registration_url = where->registration_url;
  registered.key = info.key;
  registered.signature_scheme = info.signature_scheme;
  registered.username = options.username;
  if (info.curve_serverkey) {
    registered.curve_serverkey = *info.curve_serverkey;
    registered.curve_publickey = options.curve_publickey;
    registered.curve_secretkey = options.curve_secretkey;
    if (registered.curve_secretkey.empty()) {
      char pub[41], sec[41];
      if (zmq_curve_keypair(pub, sec) != 0)
        return Status::Unavailable("the controller uses CurveZMQ, which this libzmq lacks");
      registered.curve_publickey = pub;
      registered.curve_secretkey = sec;
    }
  }

  zmq::socket_t reg(ctx, zmq::socket_type::dealer);
  reg.set(zmq::sockopt::routing_id, uuid);
  reg.set(zmq::sockopt::linger, 0);
  SecureClient(reg);
  reg.connect(registered.registration_url);
  Json content = {{"uuid", uuid}};
  if (options.requested_id) content["id"] = *options.requested_id;
  Json header = wire::MakeHeader(msg::kRegistrationRequest, uuid, options.username);
  wire::Frames frames =
      wire::Encode({}, header, Json::object(), Json::object(), content, *main_signer);
  SendFrames(reg, frames);
  SHOAL_LOG(Info) << "registering with the controller at " << registered.registration_url << " ("
                  << where->source << ")";

  zmq::pollitem_t item = {reg.handle(), 0, ZMQ_POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(options.timeout_s * 1000));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      RegisteredEngine cancel = registered;
      cancel.id = options.requested_id.value_or(-1);
      (void)SendUnregistration(cancel, "registration timed out", 1000);
      exit_code = 255;
      return Status::TimedOut("no registration reply from " + registered.registration_url +
                              " within " + std::to_string(options.timeout_s) + " s");
    }
    try {
      zmq::poll(&item, 1, left);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    wire::Frames in;
    if (!RecvFrames(reg, in)) continue;
    Message reply;
    Status st = wire::Decode(std::move(in), main_signer.get(), {.parse_content = true}, reply);
    if (!st.ok()) {
      SHOAL_LOG(Warn) << "ignoring a bad registration reply: " << st.message();
      continue;
    }
    const Json& c = reply.content;
    if (wire::GetString(c, "status") != "ok") {
      exit_code = 1;
      return Status::Unavailable("Registration Failed: " + wire::GetString(c, "evalue") + " (" +
                                 wire::GetString(c, "ename") + ")");
    }
    if (!c.contains("id") || !c["id"].is_number_integer())
      return Status::ProtocolError("registration_reply without an id");
    id = c["id"].get<int>();
    if (c.contains("hb_period") && c["hb_period"].is_number())
      hb_period_ms = static_cast<int>(c["hb_period"].get<double>());
    registered.id = id;
    Json ci = c.contains("connection_info") && c["connection_info"].is_object()
                  ? c["connection_info"]
                  : wire::RegistrationConnectionInfo(info);
    // The reply names the interface the controller bound; connect where we found it.
    ci["interface"] = info.interface;
    return ConnectSockets(ci);
  }
}

Status Engine::Impl::ConnectSockets(const Json& ci) {
  std::string iface = wire::GetString(ci, "interface");
  auto endpoint = [&](const char* name) -> std::string {
    if (!ci.contains(name) || !ci[name].is_number_integer()) return "";
    return wire::JoinEndpoint(iface, ci[name].get<int>());
  };
  std::string mux = endpoint("mux"), task = endpoint("task"), ctl = endpoint("control"),
              iopub = endpoint("iopub"), ping = endpoint("hb_ping"), pong = endpoint("hb_pong");
  if (mux.empty() || task.empty() || ctl.empty() || iopub.empty() || ping.empty() || pong.empty())
    return Status::ProtocolError("registration_reply lacks ports: " + ci.dump());
  std::string bcast;
  if (ci.contains("broadcast") && ci["broadcast"].is_array() && !ci["broadcast"].empty()) {
    const Json& ports = ci["broadcast"];
    const Json& port = ports[static_cast<size_t>(id) % ports.size()];
    if (port.is_number_integer()) bcast = wire::JoinEndpoint(iface, port.get<int>());
  }
  topic_prefix = "engine." + std::to_string(id) + ".";
  engine_metadata = Json{{"engine", uuid}}.dump();

  auto make = [&](zmq::socket_t& s, zmq::socket_type type, bool identity) {
    s = zmq::socket_t(ctx, type);
    s.set(zmq::sockopt::linger, 1000);
    if (identity) s.set(zmq::sockopt::routing_id, uuid);
    SecureClient(s);
  };
  make(shell, zmq::socket_type::router, true);
  shell.connect(mux);
  shell.connect(task);
  if (!bcast.empty()) shell.connect(bcast);
  make(iopub_main, zmq::socket_type::pub, false);
  iopub_main.connect(iopub);
  make(control, zmq::socket_type::router, true);
  control.connect(ctl);
  make(iopub_io, zmq::socket_type::pub, false);
  iopub_io.connect(iopub);
  make(hb_ping, zmq::socket_type::sub, false);
  hb_ping.set(zmq::sockopt::subscribe, "");
  hb_ping.connect(ping);
  make(hb_pong, zmq::socket_type::dealer, true);
  hb_pong.connect(pong);
  pair_io = zmq::socket_t(ctx, zmq::socket_type::pair);
  pair_io.bind("inproc://shoal-engine-io");
  pair_main = zmq::socket_t(ctx, zmq::socket_type::pair);
  pair_main.connect("inproc://shoal-engine-io");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Publishing (main thread)

void Engine::Impl::Publish(std::string_view msg_type, std::string_view content_json,
                           std::string_view topic, wire::Frames buffers,
                           std::string_view metadata_json) {
  std::string header = wire::Dump(wire::MakeHeader(msg_type, uuid, options.username));
  std::vector<zmq::message_t> ids;
  ids.emplace_back(topic.data(), topic.size());
  wire::Frames f = wire::EncodeParts(ids, header, current_parent,
                                     metadata_json.empty() ? engine_metadata : metadata_json,
                                     content_json, *main_signer, std::move(buffers));
  SendFrames(iopub_main, f);
  ++outputs_published;
}

void Engine::Impl::PublishStatus(zmq::socket_t& pub, std::string_view parent, const char* state) {
  std::string header = wire::Dump(wire::MakeHeader(msg::kStatus, uuid, options.username));
  std::string topic = topic_prefix + "status";
  std::vector<zmq::message_t> ids;
  ids.emplace_back(topic.data(), topic.size());
  std::string content = std::string(R"({"execution_state": ")") + state + "\"}";
  wire::Frames f = wire::EncodeParts(ids, header, parent, engine_metadata, content, *main_signer);
  SendFrames(pub, f);
}

// ---------------------------------------------------------------------------------------
// The shell loop

Json Engine::Impl::ReplyMetadata(const Message& req) const {
  const Json& md = req.metadata;
  Json out = {{"started", wire::FormatIsoDate(SystemClock::Instance().WallMicros())},
              {"dependencies_met", true},
              {"engine", uuid},
              {"is_broadcast", wire::GetBool(md, "is_broadcast", false)},
              {"is_coalescing", wire::GetBool(md, "is_coalescing", false)},
              {"original_msg_id", wire::GetString(md, "original_msg_id")}};
  if (md.contains("label")) out["label"] = md["label"];
  return out;
}

void Engine::Impl::SendShellReply(Message& req, std::string_view reply_type, std::string metadata,
                                  const std::string& content, wire::Frames buffers) {
  if (outputs_published > 0) {
    // How many outputs precede this reply: shoal-controller holds the reply until it has
    // relayed them, so clients see a request's output before its reply.
    metadata.pop_back();  // the closing brace of the JSON object
    metadata += (metadata.size() > 1 ? ", " : "") + std::string("\"shoal_outputs\": ") +
                std::to_string(outputs_published) + "}";
  }
  std::vector<zmq::message_t> ids;
  ids.reserve(req.delim);
  for (size_t i = 0; i < req.delim; ++i) ids.push_back(std::move(req.frames[i]));
  std::string header = wire::Dump(wire::MakeHeader(reply_type, uuid, options.username));
  wire::Frames f = wire::EncodeParts(ids, header, req.frame(wire::kHeaderOffset), metadata, content,
                                     *main_signer, std::move(buffers));
  SendFrames(shell, f);
}

bool Engine::Impl::TakeAborted(const std::string& msg_id) {
  std::lock_guard<std::mutex> lock(aborted_mu);
  return aborted.erase(msg_id) > 0;
}

void Engine::Impl::SendAborted(Message& req) {
  outputs_published = 0;
  std::string parent(req.frame(wire::kHeaderOffset));
  PublishStatus(iopub_main, parent, "busy");
  Json md = ReplyMetadata(req);
  md["status"] = "aborted";
  SendShellReply(req, ReplyTypeFor(req.msg_type()), wire::Dump(md), R"({"status": "aborted"})");
  PublishStatus(iopub_main, parent, "idle");
}

void Engine::Impl::AbortQueued() {
  wire::Frames frames;
  while (RecvFrames(shell, frames)) {
    Message req;
    if (!wire::Decode(std::move(frames), main_signer.get(), {}, req).ok()) continue;
    SHOAL_LOG(Info) << "aborting queued " << req.msg_type() << " " << req.msg_id();
    SendAborted(req);
  }
}

void Engine::Impl::HandleShell(Message& req) {
  const std::string type = req.msg_type();
  const std::string msg_id = req.msg_id();
  if (TakeAborted(msg_id)) {
    SHOAL_LOG(Info) << "aborted " << type << " " << msg_id;
    SendAborted(req);
    return;
  }
  current_parent.assign(req.frame(wire::kHeaderOffset));
  outputs_published = 0;
  busy = true;
  PublishStatus(iopub_main, current_parent, "busy");
  Json md = ReplyMetadata(req);
  std::string reply_type = ReplyTypeFor(type);
  bool abort_rest = false;
  if (type == msg::kApplyRequest) {
    std::string serializer = wire::GetString(req.metadata, "serializer");
    wire::Frames bufs;
    bufs.reserve(req.num_buffers());
    for (size_t i = req.delim + wire::kFirstBufferOffset; i < req.frames.size(); ++i)
      bufs.push_back(std::move(req.frames[i]));
    req.frames.resize(req.delim + wire::kFirstBufferOffset);
    ApplyOutcome out = python->Apply(msg_id, serializer, std::move(bufs));
    if (!serializer.empty()) md["serializer"] = serializer;
    if (out.ok) {
      md["status"] = "ok";
      SendShellReply(req, reply_type, wire::Dump(md), R"({"status": "ok"})", std::move(out.result));
    } else {
      md["status"] = "error";
      md["engine_info"] = {{"engine_uuid", uuid}, {"engine_id", id}};
      if (out.ename == "UnmetDependency") md["dependencies_met"] = false;
      SendShellReply(req, reply_type, wire::Dump(md), out.error_json);
    }
  } else if (type == msg::kExecuteRequest) {
    Json content;
    (void)wire::ParseJsonObject(req.frame(wire::kContentOffset), "content", content);
    ExecuteOutcome out = python->Execute(msg_id, req.frame(wire::kContentOffset));
    md["status"] = out.status;
    if (out.status == "error") {
      md["engine_info"] = {{"engine_uuid", uuid}, {"engine_id", id}};
      abort_rest =
          !wire::GetBool(content, "silent", false) && wire::GetBool(content, "stop_on_error", true);
    }
    SendShellReply(req, reply_type, wire::Dump(md), out.content_json);
  } else if (type == "kernel_info_request") {
    Json info = {{"status", "ok"},
                 {"protocol_version", wire::kProtocolVersion},
                 {"implementation", "shoal-engine"},
                 {"implementation_version", "0.1.0"},
                 {"language_info", {{"name", "python"}}},
                 {"banner", "shoal engine"}};
    md["status"] = "ok";
    SendShellReply(req, reply_type, wire::Dump(md), wire::Dump(info));
  } else if (type.rfind("comm_", 0) == 0) {
    // Widget traffic proxied by a client inside a kernel: no reply is expected.
    SHOAL_LOG(Debug) << "ignoring " << type;
  } else {
    md["status"] = "error";
    Json err = {{"status", "error"},
                {"ename", "NotImplementedError"},
                {"evalue", "shoal-engine does not handle " + type},
                {"traceback", Json::array()},
                {"engine_info", {{"engine_uuid", uuid}, {"engine_id", id}, {"method", type}}}};
    SendShellReply(req, reply_type, wire::Dump(md), wire::Dump(err));
  }
  PublishStatus(iopub_main, current_parent, "idle");
  busy = false;
  current_parent = "{}";
  outputs_published = 0;
  // After a failed cell, IPython kernels abort what is already queued (stop_on_error).
  if (abort_rest) AbortQueued();
}

void Engine::Impl::HandleFromIo() {
  wire::Frames frames;
  if (!RecvFrames(pair_main, frames) || frames.empty()) return;
  std::string_view cmd = wire::View(frames[0]);
  if (cmd == kCmdStop) {
    stopping = true;
  } else if (cmd == kCmdAbortQueued) {
    AbortQueued();
  } else if (cmd == kCmdClear) {
    frames.erase(frames.begin());
    Message req;
    if (!wire::Decode(std::move(frames), nullptr, {}, req).ok()) return;
    std::string parent(req.frame(wire::kHeaderOffset));
    PublishStatus(iopub_main, parent, "busy");
    Status st = python->Clear();
    Json content = st.ok() ? Json{{"status", "ok"}}
                           : Json{{"status", "error"},
                                  {"ename", "RuntimeError"},
                                  {"evalue", st.message()},
                                  {"traceback", Json::array()}};
    std::vector<zmq::message_t> ids;
    for (size_t i = 0; i < req.delim; ++i) ids.push_back(std::move(req.frames[i]));
    std::string header = wire::Dump(wire::MakeHeader(msg::kClearReply, uuid, options.username));
    wire::Frames reply =
        wire::EncodeParts(ids, header, parent, engine_metadata, wire::Dump(content), *main_signer);
    reply.insert(reply.begin(), zmq::message_t(kCmdSendControl.data(), kCmdSendControl.size()));
    SendFrames(pair_main, reply);
    PublishStatus(iopub_main, parent, "idle");
  }
}

void Engine::Impl::ServeShell() {
  const wire::DecodeOptions opts{.parse_parent = false, .parse_metadata = true};
  while (!stopping) {
    python->ReleaseSentBuffers();
    zmq::pollitem_t items[] = {{pair_main.handle(), 0, ZMQ_POLLIN, 0},
                               {shell.handle(), 0, ZMQ_POLLIN, 0}};
    long timeout_ms = python->HasUnreleasedBuffers() ? 50 : 1000;
    {
      PythonHost::Unlocked unlocked;
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        continue;
      }
    }
    // Control work forwarded by the I/O thread goes before the next shell request.
    if (items[0].revents & ZMQ_POLLIN) {
      HandleFromIo();
      continue;
    }
    if (!(items[1].revents & ZMQ_POLLIN)) continue;
    wire::Frames frames;
    if (!RecvFrames(shell, frames)) continue;
    Message req;
    Status st = wire::Decode(std::move(frames), main_signer.get(), opts, req);
    if (!st.ok()) {
      SHOAL_LOG(Warn) << "dropped a shell message: " << st.message();
      continue;
    }
    HandleShell(req);
  }
}

// ---------------------------------------------------------------------------------------

int Engine::Run() {
  Impl& e = *impl_;
  log::SetLevel(e.options.log_level);
  Status st = e.Register();
  if (!st.ok()) {
    SHOAL_LOG(Critical) << st.message();
    return e.exit_code != 0 ? e.exit_code.load() : 1;
  }
  SHOAL_LOG(Info) << "registered as engine " << e.id << " (" << e.uuid << ")";
  e.watchdog.ReportRegistered(e.registered);

  // The I/O thread must never take signals meant for Python on the main thread.
  sigset_t block, old;
  sigemptyset(&block);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD})
    sigaddset(&block, s);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  e.io_thread = std::thread([&e] { e.IoLoop(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  PythonConfig pc;
  pc.python = e.options.python.empty() ? PythonHost::DefaultPython() : e.options.python;
  pc.shoal_path = PythonHost::DefaultShoalPath();
  pc.engine_id = e.id;
  pc.engine_uuid = e.uuid;
  Json shell_config = Json::object();
  for (const auto& [k, v] : e.options.shell_config) shell_config[k] = v;
  pc.runtime_options = {
      {"startup_command",
       e.options.startup_command.empty() ? Json() : Json(e.options.startup_command)},
      {"startup_script",
       e.options.startup_script.empty() ? Json() : Json(e.options.startup_script)},
      {"shell_config", shell_config},
      {"profile_dir", wire::ResolveProfileDir(e.options.profile).path}};
  auto python = PythonHost::Start(pc, &e);
  if (!python.ok()) {
    SHOAL_LOG(Critical) << python.status().message();
    e.exit_code = 1;
  } else {
    e.python = std::move(*python);
    SHOAL_LOG(Info) << "engine " << e.id << " ready (Python " << pc.python << ")";
    e.ServeShell();
    e.python->FlushStreams();
  }
  e.stopping = true;
  wire::Frames stop;
  stop.emplace_back(kCmdStop.data(), kCmdStop.size());
  Impl::SendFrames(e.pair_main, stop);  // the I/O thread ends its loop
  if (e.io_thread.joinable()) e.io_thread.join();
  e.shell.close();
  e.iopub_main.close();
  e.pair_main.close();
  return e.exit_code;
}

}  // namespace shoal::engine
