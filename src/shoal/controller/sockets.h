// ControllerSockets: every socket shoal-controller binds, and the poll loop over them.
//
// This is the one place where zmq errors become Status (BindSocket, Poll). Socket types and
// routing identities follow IPython Parallel (see docs/protocol.md): engine-facing ROUTERs
// carry distinct identities (mux_out, task_out, control_out, sub_scheduler_00) because an
// engine's single shell ROUTER tells its peers apart by them.
//
// Thread rule: owned and used by the controller's event-loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "shoal/status.h"
#include "shoal/wire/connection_file.h"
#include "shoal/wire/message.h"

namespace shoal::controller {

enum class Channel {
  kQuery,            // registration + hub queries (ROUTER)
  kMuxClient,        // mux_in (ROUTER)
  kMuxEngine,        // mux_out (ROUTER)
  kControlClient,    // control_in
  kControlEngine,    // control_out
  kTaskClient,       // task_in
  kTaskEngine,       // task_out
  kBroadcastClient,  // sub_scheduler_0
  kBroadcastEngine,  // the leaf schedulers' ports
  kIopubEngine,      // SUB from engines
  kPong,             // heartbeat ROUTER
};

struct SocketPlan {
  std::string transport = "tcp";
  std::string engine_ip = "127.0.0.1", client_ip = "127.0.0.1";
  int regport = 0;
  std::vector<int> ports, engine_ports, client_ports;  // pools; empty = random ports
  int broadcast_leaves = 2;
  bool enable_curve = false;
  std::string curve_secretkey, curve_publickey;  // generated when empty
  bool reuse = false;                            // bind exactly these ports:
  wire::ChannelPorts reuse_client, reuse_engine;
};

class ControllerSockets {
 public:
  // Binds everything. kUnavailable when a port is taken; kInvalidArgument for a bad plan.
  static Result<std::unique_ptr<ControllerSockets>> Bind(const SocketPlan& plan);
  ~ControllerSockets();

  // Waits up to timeout_ms for input, then hands every queued message (a bounded batch per
  // socket) to `handler`. Returns early on EINTR.
  void Poll(long timeout_ms, const std::function<void(Channel, wire::Frames&&)>& handler);

  // Sends a multipart message; the frames are consumed. Send failures are logged, not thrown.
  static void SendFrames(zmq::socket_t& sock, wire::Frames& frames);

  // Sends to a peer of an engine-facing ROUTER (ROUTER_MANDATORY). Returns false, leaving
  // `frames` intact, when the peer is not connected (yet): the caller keeps them for later.
  static bool TrySendToPeer(zmq::socket_t& sock, wire::Frames& frames);

  zmq::socket_t& query() { return *query_; }
  zmq::socket_t& notification() { return *notification_; }
  zmq::socket_t& mux_client() { return *mux_client_; }
  zmq::socket_t& mux_engine() { return *mux_engine_; }
  zmq::socket_t& control_client() { return *control_client_; }
  zmq::socket_t& control_engine() { return *control_engine_; }
  zmq::socket_t& task_client() { return *task_client_; }
  zmq::socket_t& task_engine() { return *task_engine_; }
  zmq::socket_t& broadcast_client() { return *broadcast_client_; }
  zmq::socket_t& broadcast_engine() { return *broadcast_engine_; }
  zmq::socket_t& iopub_client() { return *iopub_client_; }
  zmq::socket_t& hb_ping() { return *hb_ping_; }

  std::string client_interface() const { return client_interface_; }
  std::string engine_interface() const { return engine_interface_; }
  const wire::ChannelPorts& client_ports() const { return client_ports_; }
  const wire::ChannelPorts& engine_ports() const { return engine_ports_; }
  const std::string& curve_publickey() const { return curve_public_; }

 private:
  ControllerSockets() = default;
  Result<std::unique_ptr<zmq::socket_t>> Make(zmq::socket_type type, const std::string& identity,
                                              bool mandatory = false);
  // Binds `sock` on `ip` at `port` (0 = from the pool or random); returns the port.
  Result<int> BindPort(zmq::socket_t& sock, const std::string& ip, int port,
                       std::vector<int>& pool);

  zmq::context_t ctx_{1};
  std::string transport_;
  bool curve_ = false;
  std::string curve_secret_, curve_public_;
  int ipc_counter_ = 0;
  std::unique_ptr<zmq::socket_t> query_, notification_, mux_client_, mux_engine_, control_client_,
      control_engine_, task_client_, task_engine_, broadcast_client_, broadcast_engine_,
      iopub_engine_, iopub_client_, hb_ping_, hb_pong_;
  std::vector<std::pair<zmq::socket_t*, Channel>> readable_;
  std::string client_interface_, engine_interface_;
  wire::ChannelPorts client_ports_, engine_ports_;
};

// The one conversion of a zmq error into a Status: EADDRINUSE -> kUnavailable, ETERM ->
// kCancelled, EINVAL / EPROTONOSUPPORT / ENOCOMPATPROTO -> kInvalidArgument, else kIOError.
Status ZmqStatus(const zmq::error_t& e, const std::string& context);

}  // namespace shoal::controller
