#include "shoal/controller/sockets.h"

#include <algorithm>
#include <cerrno>

#include "shoal/common/log.h"

namespace shoal::controller {

Status ZmqStatus(const zmq::error_t& e, const std::string& context) {
  std::string msg = context + ": " + e.what();
  switch (e.num()) {
    case EADDRINUSE:
      return Status::Unavailable(msg);
    case ETERM:
      return Status::Cancelled(msg);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case ENODEV:
      return Status::InvalidArgument(msg);
    default:
      return Status::IOError(msg);
  }
}

ControllerSockets::~ControllerSockets() {
  for (auto* s : {&query_, &notification_, &mux_client_, &mux_engine_, &control_client_,
                  &control_engine_, &task_client_, &task_engine_, &broadcast_client_,
                  &broadcast_engine_, &iopub_engine_, &iopub_client_, &hb_ping_, &hb_pong_}) {
    if (*s) {
      (*s)->set(zmq::sockopt::linger, 0);
      s->reset();
    }
  }
}

Result<std::unique_ptr<zmq::socket_t>> ControllerSockets::Make(zmq::socket_type type,
                                                               const std::string& identity,
                                                               bool mandatory) {
  try {
    auto s = std::make_unique<zmq::socket_t>(ctx_, type);
    s->set(zmq::sockopt::sndhwm, 0);
    s->set(zmq::sockopt::rcvhwm, 0);
    s->set(zmq::sockopt::linger, 0);
    if (!identity.empty()) s->set(zmq::sockopt::routing_id, identity);
    // Engine-facing ROUTERs refuse to drop messages for engines that are not connected (a
    // restored engine still reconnecting): the controller keeps them and retries.
    if (mandatory) s->set(zmq::sockopt::router_mandatory, 1);
    if (curve_) {
      s->set(zmq::sockopt::curve_server, 1);
      s->set(zmq::sockopt::curve_secretkey, curve_secret_);
    }
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "creating socket " + identity);
  }
}

Result<int> ControllerSockets::BindPort(zmq::socket_t& sock, const std::string& ip, int port,
                                        std::vector<int>& pool) {
  if (port == 0 && !pool.empty()) {
    port = pool.front();
    pool.erase(pool.begin());
  }
  std::string endpoint;
  if (transport_ == "ipc") {
    if (port == 0) port = ++ipc_counter_;
    endpoint = "ipc://" + ip + "-" + std::to_string(port);
  } else {
    endpoint = transport_ + "://" + ip + ":" + (port ? std::to_string(port) : "*");
  }
  try {
    sock.bind(endpoint);
    if (port) return port;
    std::string last = sock.get(zmq::sockopt::last_endpoint);
    return std::stoi(last.substr(last.rfind(':') + 1));
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "binding " + endpoint);
  }
}

Result<std::unique_ptr<ControllerSockets>> ControllerSockets::Bind(const SocketPlan& plan) {
  std::unique_ptr<ControllerSockets> s(new ControllerSockets());
  if (plan.transport != "tcp" && plan.transport != "ipc")
    return Status::InvalidArgument("unsupported transport '" + plan.transport + "'");
  s->transport_ = plan.transport;
  if (plan.enable_curve) {
    s->curve_ = true;
    s->curve_secret_ = plan.curve_secretkey;
    s->curve_public_ = plan.curve_publickey;
    if (s->curve_secret_.empty()) {
      char pub[41], sec[41];
      if (zmq_curve_keypair(pub, sec) != 0)
        return Status::Unavailable("CurveZMQ is not available in this libzmq");
      s->curve_public_ = pub;
      s->curve_secret_ = sec;
    } else if (s->curve_public_.empty()) {
      char pub[41];
      if (zmq_curve_public(pub, s->curve_secret_.c_str()) != 0)
        return Status::InvalidArgument("IPP_CURVE_SECRETKEY is not a Z85 CurveZMQ secret key");
      s->curve_public_ = pub;
    }
  }
  std::vector<int> shared = plan.ports;
  std::vector<int> engine_pool = plan.engine_ports, client_pool = plan.client_ports;
  engine_pool.insert(engine_pool.end(), shared.begin(), shared.end());
  client_pool.insert(client_pool.end(), shared.begin(), shared.end());
  const auto& ce = plan.reuse_engine;
  const auto& cc = plan.reuse_client;
  const std::string& eip = plan.engine_ip;
  const std::string& cip = plan.client_ip;
  auto& E = s->engine_ports_;
  auto& C = s->client_ports_;

  auto make = [&](std::unique_ptr<zmq::socket_t>& dst, zmq::socket_type t, const std::string& id,
                  Channel ch, bool readable) -> Status {
    bool engine_router = ch == Channel::kMuxEngine || ch == Channel::kControlEngine ||
                         ch == Channel::kTaskEngine || ch == Channel::kBroadcastEngine;
    SHOAL_ASSIGN_OR_RETURN(dst, s->Make(t, id, engine_router));
    if (readable) s->readable_.emplace_back(dst.get(), ch);
    return Status::Ok();
  };
  // Bind `sock` on one side; `reuse_port` is the port from a reused file (0 = none).
  auto bind = [&](zmq::socket_t& sock, bool engine_side, int reuse_port, int& out) -> Status {
    int want = plan.reuse ? reuse_port : 0;
    SHOAL_ASSIGN_OR_RETURN(out, s->BindPort(sock, engine_side ? eip : cip, want,
                                            engine_side ? engine_pool : client_pool));
    return Status::Ok();
  };

  // Registration: one ROUTER on both interfaces, same port.
  SHOAL_RETURN_NOT_OK(make(s->query_, zmq::socket_type::router, "", Channel::kQuery, true));
  {
    int want = plan.reuse ? ce.registration : plan.regport;
    std::vector<int>& pool = engine_pool;
    SHOAL_ASSIGN_OR_RETURN(E.registration, s->BindPort(*s->query_, eip, want, pool));
    C.registration = E.registration;
    if (cip != eip) {
      std::vector<int> none;
      SHOAL_ASSIGN_OR_RETURN(int p, s->BindPort(*s->query_, cip, E.registration, none));
      (void)p;
    }
  }
  SHOAL_RETURN_NOT_OK(make(s->notification_, zmq::socket_type::pub, "", Channel::kQuery, false));
  SHOAL_RETURN_NOT_OK(bind(*s->notification_, false, cc.notification, C.notification));

  SHOAL_RETURN_NOT_OK(
      make(s->mux_client_, zmq::socket_type::router, "mux_in", Channel::kMuxClient, true));
  SHOAL_RETURN_NOT_OK(bind(*s->mux_client_, false, cc.mux, C.mux));
  SHOAL_RETURN_NOT_OK(
      make(s->mux_engine_, zmq::socket_type::router, "mux_out", Channel::kMuxEngine, true));
  SHOAL_RETURN_NOT_OK(bind(*s->mux_engine_, true, ce.mux, E.mux));

  SHOAL_RETURN_NOT_OK(make(s->control_client_, zmq::socket_type::router, "control_in",
                           Channel::kControlClient, true));
  SHOAL_RETURN_NOT_OK(bind(*s->control_client_, false, cc.control, C.control));
  SHOAL_RETURN_NOT_OK(make(s->control_engine_, zmq::socket_type::router, "control_out",
                           Channel::kControlEngine, true));
  SHOAL_RETURN_NOT_OK(bind(*s->control_engine_, true, ce.control, E.control));

  SHOAL_RETURN_NOT_OK(
      make(s->task_client_, zmq::socket_type::router, "task_in", Channel::kTaskClient, true));
  SHOAL_RETURN_NOT_OK(bind(*s->task_client_, false, cc.task, C.task));
  SHOAL_RETURN_NOT_OK(
      make(s->task_engine_, zmq::socket_type::router, "task_out", Channel::kTaskEngine, true));
  SHOAL_RETURN_NOT_OK(bind(*s->task_engine_, true, ce.task, E.task));

  SHOAL_RETURN_NOT_OK(make(s->broadcast_client_, zmq::socket_type::router, "sub_scheduler_0",
                           Channel::kBroadcastClient, true));
  {
    int p;
    SHOAL_RETURN_NOT_OK(
        bind(*s->broadcast_client_, false, cc.broadcast.empty() ? 0 : cc.broadcast[0], p));
    C.broadcast = {p};
  }
  // One ROUTER stands for every leaf scheduler: each engine connects to exactly one leaf
  // port, so a single identity never collides on an engine's shell socket.
  SHOAL_RETURN_NOT_OK(make(s->broadcast_engine_, zmq::socket_type::router, "sub_scheduler_00",
                           Channel::kBroadcastEngine, true));
  for (int leaf = 0; leaf < std::max(1, plan.broadcast_leaves); ++leaf) {
    int p;
    int reuse_port = leaf < static_cast<int>(ce.broadcast.size()) ? ce.broadcast[leaf] : 0;
    SHOAL_RETURN_NOT_OK(bind(*s->broadcast_engine_, true, reuse_port, p));
    E.broadcast.push_back(p);
  }

  SHOAL_RETURN_NOT_OK(
      make(s->iopub_engine_, zmq::socket_type::sub, "", Channel::kIopubEngine, true));
  s->iopub_engine_->set(zmq::sockopt::subscribe, "");
  SHOAL_RETURN_NOT_OK(bind(*s->iopub_engine_, true, ce.iopub, E.iopub));
  SHOAL_RETURN_NOT_OK(
      make(s->iopub_client_, zmq::socket_type::pub, "", Channel::kIopubEngine, false));
  SHOAL_RETURN_NOT_OK(bind(*s->iopub_client_, false, cc.iopub, C.iopub));

  SHOAL_RETURN_NOT_OK(make(s->hb_ping_, zmq::socket_type::pub, "", Channel::kPong, false));
  SHOAL_RETURN_NOT_OK(bind(*s->hb_ping_, true, ce.hb_ping, E.hb_ping));
  SHOAL_RETURN_NOT_OK(make(s->hb_pong_, zmq::socket_type::router, "", Channel::kPong, true));
  SHOAL_RETURN_NOT_OK(bind(*s->hb_pong_, true, ce.hb_pong, E.hb_pong));

  // Engines publish a request's output before they send its reply, but on another
  // connection; when both are waiting, relay the output first so clients see it first.
  std::stable_partition(s->readable_.begin(), s->readable_.end(),
                        [](const auto& r) { return r.second == Channel::kIopubEngine; });
  s->engine_interface_ = plan.transport + "://" + eip;
  s->client_interface_ = plan.transport + "://" + cip;
  return s;
}

void ControllerSockets::Poll(long timeout_ms,
                             const std::function<void(Channel, wire::Frames&&)>& handler) {
  std::vector<zmq::pollitem_t> items;
  items.reserve(readable_.size());
  for (auto& [sock, ch] : readable_) items.push_back({static_cast<void*>(*sock), 0, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) SHOAL_LOG(Error) << ZmqStatus(e, "poll").ToString();
    return;
  }
  // A bounded batch per socket keeps one busy channel from starving the others.
  constexpr int kBatch = 512;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!(items[i].revents & ZMQ_POLLIN)) continue;
    auto [sock, ch] = readable_[i];
    for (int n = 0; n < kBatch; ++n) {
      wire::Frames frames;
      try {
        zmq::message_t part;
        if (!sock->recv(part, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(part));
        while (frames.back().more()) {
          zmq::message_t next;
          if (!sock->recv(next, zmq::recv_flags::none)) break;
          frames.push_back(std::move(next));
        }
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) SHOAL_LOG(Error) << ZmqStatus(e, "recv").ToString();
        break;
      }
      handler(ch, std::move(frames));
    }
  }
}

bool ControllerSockets::TrySendToPeer(zmq::socket_t& sock, wire::Frames& frames) {
  try {
    // The first frame names the peer; a ROUTER_MANDATORY socket refuses it at once when the
    // peer is unknown, before anything is consumed.
    auto flags = frames.size() > 1 ? zmq::send_flags::sndmore : zmq::send_flags::none;
    sock.send(frames[0], flags);
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return false;
    SHOAL_LOG(Warn) << ZmqStatus(e, "send").ToString();
    return true;
  }
  try {
    for (size_t i = 1; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      sock.send(frames[i], flags);
    }
  } catch (const zmq::error_t& e) {
    SHOAL_LOG(Warn) << ZmqStatus(e, "send").ToString();
  }
  return true;
}

void ControllerSockets::SendFrames(zmq::socket_t& sock, wire::Frames& frames) {
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      sock.send(frames[i], flags);
    }
  } catch (const zmq::error_t& e) {
    SHOAL_LOG(Warn) << ZmqStatus(e, "send").ToString();
  }
}

}  // namespace shoal::controller
