// The client's I/O thread: sends queued requests, receives replies, iopub output and
// notifications, and keeps the ResultBook and the engine table.
#include <cerrno>

#include "shoal/client/client_core.h"
#include "shoal/common/log.h"
#include "shoal/wire/json_get.h"

namespace shoal {
namespace {

// Messages taken from one socket per wake-up before the others get a turn.
constexpr int kBatch = 256;

// Receives one whole message without blocking; false when none is waiting.
bool RecvFrames(zmq::socket_t& s, Frames& out) {
  out.clear();
  for (;;) {
    zmq::message_t m;
    auto got = s.recv(m, out.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
    if (!got) return false;
    bool more = m.more();
    out.push_back(std::move(m));
    if (!more) return true;
  }
}

}  // namespace

zmq::socket_t& Client::Impl::SocketFor(Channel c) {
  switch (c) {
    case Channel::kQuery:
      return query;
    case Channel::kMux:
      return mux;
    case Channel::kTask:
      return task;
    case Channel::kControl:
      return control;
    case Channel::kBroadcast:
      return broadcast;
  }
  return query;
}

void Client::Impl::SendOut(client::Outgoing& out) {
  std::vector<std::string> ids;
  for (auto& t : out.tracks) {
    ids.push_back(t.msg_id);
    book->Add(std::move(t));
  }
  zmq::socket_t& s = SocketFor(out.channel);
  try {
    for (size_t i = 0; i < out.frames.size(); ++i) {
      auto flags = i + 1 < out.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      s.send(out.frames[i], flags);
    }
  } catch (const zmq::error_t& e) {
    Status st = client::ZmqStatus(e, "sending a request");
    SHOAL_LOG(Warn) << st.ToString();
    for (const auto& id : ids) book->Fail(id, st);
  }
}

void Client::Impl::HandleReply(Frames&& frames) {
  wire::Message msg;
  wire::DecodeOptions opts;
  opts.parse_metadata = false;
  Status st = wire::Decode(std::move(frames), io_signer.get(), opts, msg);
  if (!st.ok()) {
    SHOAL_LOG(Warn) << "dropping a bad reply: " << st.message();
    return;
  }
  std::string parent = msg.parent_msg_id();
  if (!book->OnReply(std::move(msg)))
    SHOAL_LOG(Debug) << "reply to " << parent << " answers nothing outstanding";
}

void Client::Impl::HandleIopub(Frames&& frames) {
  wire::Message msg;
  wire::DecodeOptions opts;
  opts.parse_metadata = false;
  opts.parse_content = true;
  Status st = wire::Decode(std::move(frames), io_signer.get(), opts, msg);
  if (!st.ok()) {
    SHOAL_LOG(Warn) << "dropping a bad iopub message: " << st.message();
    return;
  }
  book->OnIopub(std::move(msg));
}

void Client::Impl::HandleNotification(Frames&& frames) {
  wire::Message msg;
  wire::DecodeOptions opts;
  opts.parse_metadata = false;
  opts.parse_content = true;
  Status st = wire::Decode(std::move(frames), io_signer.get(), opts, msg);
  if (!st.ok()) {
    SHOAL_LOG(Warn) << "dropping a bad notification: " << st.message();
    return;
  }
  const std::string type = msg.msg_type();
  const Json& c = msg.content;
  const Json* id_json = wire::Find(c, "id");
  int id = id_json && id_json->is_number_integer() ? id_json->get<int>() : -1;
  std::string uuid = wire::GetString(c, "uuid");
  if (type == "registration_notification" && id >= 0 && !uuid.empty()) {
    {
      std::lock_guard<std::mutex> lock(engines_mu);
      engines[id] = uuid;
    }
    engines_cv.notify_all();
  } else if (type == "unregistration_notification" && id >= 0) {
    {
      std::lock_guard<std::mutex> lock(engines_mu);
      auto it = engines.find(id);
      if (it != engines.end()) {
        if (uuid.empty()) uuid = it->second;
        engines.erase(it);
      }
    }
    engines_cv.notify_all();
    size_t n = book->OnEngineGone(id, uuid, wire::GetString(c, "reason"));
    if (n) SHOAL_LOG(Info) << "engine " << id << " left; " << n << " requests failed";
  } else if (type == "shutdown_notification") {
    book->FailAll(Status::Unavailable("the controller shut down"));
  }
}

void Client::Impl::IoLoop() {
  zmq::pollitem_t items[] = {
      {nullptr, queue.fd(), ZMQ_POLLIN, 0}, {query.handle(), 0, ZMQ_POLLIN, 0},
      {mux.handle(), 0, ZMQ_POLLIN, 0},     {task.handle(), 0, ZMQ_POLLIN, 0},
      {control.handle(), 0, ZMQ_POLLIN, 0}, {broadcast.handle(), 0, ZMQ_POLLIN, 0},
      {iopub.handle(), 0, ZMQ_POLLIN, 0},   {notification.handle(), 0, ZMQ_POLLIN, 0},
  };
  zmq::socket_t* sockets[] = {nullptr,  &query,     &mux,   &task,
                              &control, &broadcast, &iopub, &notification};
  constexpr int kN = sizeof(items) / sizeof(items[0]);
  std::vector<client::Outgoing> batch;
  Frames frames;
  for (;;) {
    try {
      zmq::poll(items, kN, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      SHOAL_LOG(Error) << client::ZmqStatus(e, "client poll").ToString();
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      batch.clear();
      queue.Drain(batch);
      for (auto& out : batch) SendOut(out);
      if (queue.closed()) break;
    }
    for (int i = 1; i < kN; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      for (int k = 0; k < kBatch; ++k) {
        try {
          if (!RecvFrames(*sockets[i], frames)) break;
        } catch (const zmq::error_t& e) {
          if (e.num() != EINTR) SHOAL_LOG(Warn) << client::ZmqStatus(e, "client recv").ToString();
          break;
        }
        if (sockets[i] == &iopub) {
          HandleIopub(std::move(frames));
        } else if (sockets[i] == &notification) {
          HandleNotification(std::move(frames));
        } else {
          HandleReply(std::move(frames));
        }
      }
    }
    outstanding.store(book->outstanding(), std::memory_order_relaxed);
  }
  book->FailAll(Status::Cancelled("the client was closed"));
  outstanding.store(0);
  for (zmq::socket_t* s : sockets)
    if (s) s->close();
}

}  // namespace shoal
