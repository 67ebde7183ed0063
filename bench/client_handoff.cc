// How requests cross from caller threads to the client's I/O thread: the SubmitQueue
// (mutex + vector + eventfd polled by zmq_poll) against an inproc PUSH/PULL pair carrying a
// pointer (one PUSH shared by callers under a mutex, as zmq sockets are single-threaded).
// Measures the one-item handoff latency (producer pushes, consumer wakes in zmq_poll and
// flips an atomic the producer spins on) and the throughput of 4 producers.
//   build/release/bin/client_handoff
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "shoal/client/client_core.h"

using namespace shoal;
using Clock = std::chrono::steady_clock;

struct Variant {
  virtual ~Variant() = default;
  virtual void Push(client::Outgoing o) = 0;
  virtual size_t Consume(zmq::pollitem_t& item) = 0;  // returns items taken
  virtual zmq::pollitem_t Item() = 0;
};

struct QueueVariant : Variant {
  client::SubmitQueue q;
  std::vector<client::Outgoing> batch;
  void Push(client::Outgoing o) override { q.Push(o); }
  zmq::pollitem_t Item() override { return {nullptr, q.fd(), ZMQ_POLLIN, 0}; }
  size_t Consume(zmq::pollitem_t&) override {
    batch.clear();
    q.Drain(batch);
    return batch.size();
  }
};

struct InprocVariant : Variant {
  zmq::context_t ctx{1};
  zmq::socket_t pull{ctx, zmq::socket_type::pull}, push{ctx, zmq::socket_type::push};
  std::mutex mu;
  InprocVariant() {
    pull.set(zmq::sockopt::rcvhwm, 0);
    push.set(zmq::sockopt::sndhwm, 0);
    pull.bind("inproc://handoff");
    push.connect("inproc://handoff");
  }
  void Push(client::Outgoing o) override {
    auto* p = new client::Outgoing(std::move(o));
    std::lock_guard<std::mutex> lock(mu);
    push.send(zmq::const_buffer(&p, sizeof p), zmq::send_flags::none);
  }
  zmq::pollitem_t Item() override { return {pull.handle(), 0, ZMQ_POLLIN, 0}; }
  size_t Consume(zmq::pollitem_t&) override {
    size_t n = 0;
    zmq::message_t m;
    while (pull.recv(m, zmq::recv_flags::dontwait)) {
      client::Outgoing* p;
      std::memcpy(&p, m.data(), sizeof p);
      delete p;
      ++n;
    }
    return n;
  }
};

client::Outgoing Item() {
  client::Outgoing o;
  o.frames.emplace_back(64);
  return o;
}

void Run(const char* name, Variant& v) {
  std::atomic<size_t> consumed{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    zmq::pollitem_t items[] = {v.Item()};
    while (!stop.load()) {
      zmq::poll(items, 1, std::chrono::milliseconds(50));
      if (items[0].revents & ZMQ_POLLIN) consumed.fetch_add(v.Consume(items[0]));
    }
  });
  // latency: one item in flight
  std::vector<double> lat;
  for (int i = 0; i < 20000; ++i) {
    size_t before = consumed.load();
    auto t0 = Clock::now();
    v.Push(Item());
    while (consumed.load() == before) {
    }
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(lat.begin(), lat.end());
  // throughput: 4 producers
  constexpr int kProducers = 4, kEach = 250000;
  size_t base = consumed.load();
  auto t0 = Clock::now();
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) v.Push(Item());
    });
  for (auto& t : producers) t.join();
  while (consumed.load() - base < size_t{kProducers} * kEach) {
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  consumer.join();
  std::printf("%-22s handoff latency median %.1f us, p90 %.1f us; %d producers: %.2f M items/s\n",
              name, lat[lat.size() / 2], lat[lat.size() * 9 / 10], kProducers,
              kProducers * kEach / secs / 1e6);
}

int main() {
  {
    QueueVariant q;
    Run("mutex+eventfd queue", q);
  }
  {
    InprocVariant i;
    Run("inproc PUSH/PULL+mutex", i);
  }
}
