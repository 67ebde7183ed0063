// Client::Impl, the client core: the connection, the I/O thread that owns every socket, and
// the queue through which callers on any thread hand it requests.
//
// Threads: callers build and sign messages on their own thread (Signer::Sign is const) and
// push them, with the Tracks that await their replies, onto the SubmitQueue. The I/O thread
// wakes on the queue's eventfd (polled together with the sockets), registers the Tracks in
// the ResultBook *before* sending, so no reply can overtake its bookkeeping, then sends.
// Replies, iopub and notifications are decoded and booked on the I/O thread; callers only
// ever touch futures, Outputs and the engine table (under engines_mu).
#pragma once

#include <sys/eventfd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "shoal/client.h"
#include "shoal/client/result_book.h"
#include "shoal/wire/connection_file.h"
#include "shoal/wire/signer.h"

namespace shoal::client {

// One message to send, and the requests that wait for its replies.
struct Outgoing {
  Channel channel = Channel::kQuery;
  Frames frames;
  std::vector<Track> tracks;
};

// A multi-producer queue for one consumer that polls fd(): a mutex-protected vector and an
// eventfd that is written only when the queue goes from empty to non-empty.
// Thread rule: Push and Close from any thread; Drain from the consumer only.
class SubmitQueue {
 public:
  SubmitQueue();
  ~SubmitQueue();
  SubmitQueue(const SubmitQueue&) = delete;
  SubmitQueue& operator=(const SubmitQueue&) = delete;

  int fd() const { return fd_; }
  // False (and `item` untouched) once closed.
  bool Push(Outgoing& item);
  // Moves everything queued into `out` (appending) and clears the wake-up.
  void Drain(std::vector<Outgoing>& out);
  // Refuses later pushes and wakes the consumer. Returns false when already closed.
  bool Close();
  bool closed() const;

 private:
  int fd_ = -1;
  mutable std::mutex mu_;
  std::vector<Outgoing> items_;
  bool closed_ = false;
};

// The one conversion of a zmq error into a Status on the client side: ETERM -> kCancelled,
// EINVAL / EPROTONOSUPPORT / ENOCOMPATPROTO -> kInvalidArgument, else kIOError.
Status ZmqStatus(const zmq::error_t& e, const std::string& context);

}  // namespace shoal::client

namespace shoal {

struct Client::Impl {
  // --- set by Connect before the I/O thread starts; read-only afterwards ---
  ConnectOptions options;
  wire::ConnectionInfo info;
  std::string session, username;
  std::unique_ptr<wire::Signer> send_signer;  // Sign() from any thread
  std::unique_ptr<wire::Signer> io_signer;    // Check() on the I/O thread
  zmq::context_t ctx{1};

  // --- I/O thread only ---
  zmq::socket_t query, mux, task, control, broadcast, iopub, notification;
  std::unique_ptr<client::ResultBook> book;
  std::thread io_thread;

  // --- shared ---
  client::SubmitQueue queue;
  mutable std::mutex engines_mu;
  mutable std::condition_variable engines_cv;
  std::map<int, std::string> engines;  // id -> uuid
  std::atomic<size_t> outstanding{0};

  // client_connect.cc
  Status OpenSockets();
  Status FetchEngines(double timeout_s);
  // client_io.cc
  void IoLoop();
  void SendOut(client::Outgoing& out);
  void HandleReply(Frames&& frames);
  void HandleIopub(Frames&& frames);
  void HandleNotification(Frames&& frames);
  zmq::socket_t& SocketFor(Channel c);
  // client_send.cc: builds and signs on the caller's thread, then queues.
  Result<std::vector<Submitted>> Send(Request request);
  Result<std::string> UuidOf(int id) const;
};

}  // namespace shoal
