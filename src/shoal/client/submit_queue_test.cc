#include <gtest/gtest.h>
#include <poll.h>

#include <cerrno>
#include <thread>

#include "shoal/client/client_core.h"

namespace shoal::client {
namespace {

bool Readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

Outgoing Item(const std::string& id) {
  Outgoing o;
  Track t;
  t.msg_id = id;
  o.tracks.push_back(std::move(t));
  return o;
}

TEST(SubmitQueueTest, WakesOnFirstPushAndDrainsAll) {
  SubmitQueue q;
  EXPECT_FALSE(Readable(q.fd(), 0));
  for (auto id : {"a", "b", "c"}) {
    Outgoing o = Item(id);
    ASSERT_TRUE(q.Push(o));
  }
  EXPECT_TRUE(Readable(q.fd(), 0));
  std::vector<Outgoing> out;
  q.Drain(out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].tracks[0].msg_id, "c");
  EXPECT_FALSE(Readable(q.fd(), 0));
}

TEST(SubmitQueueTest, CloseRefusesAndWakes) {
  SubmitQueue q;
  EXPECT_TRUE(q.Close());
  EXPECT_FALSE(q.Close());
  EXPECT_TRUE(Readable(q.fd(), 0));
  Outgoing o = Item("x");
  EXPECT_FALSE(q.Push(o));
  EXPECT_EQ(o.tracks.size(), 1u);  // untouched
}

TEST(SubmitQueueTest, NoLostItemsAcrossThreads) {
  SubmitQueue q;
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Outgoing o = Item("m");
        q.Push(o);
      }
    });
  size_t got = 0;
  std::vector<Outgoing> out;
  while (got < kThreads * kEach) {
    ASSERT_TRUE(Readable(q.fd(), 5000)) << "lost wake-up after " << got;
    out.clear();
    q.Drain(out);
    got += out.size();
  }
  for (auto& p : producers) p.join();
  EXPECT_EQ(got, size_t{kThreads * kEach});
}

TEST(ZmqStatusTest, Mapping) {
  const std::pair<int, StatusCode> table[] = {
      {ETERM, StatusCode::kCancelled},
      {EINVAL, StatusCode::kInvalidArgument},
      {EPROTONOSUPPORT, StatusCode::kInvalidArgument},
      {ENOCOMPATPROTO, StatusCode::kInvalidArgument},
      {EHOSTUNREACH, StatusCode::kIOError},
      {EAGAIN, StatusCode::kIOError},
  };
  for (auto [err, code] : table) {
    errno = err;
    zmq::error_t e;  // reads zmq_errno(), i.e. errno
    ASSERT_EQ(e.num(), err);
    Status st = ZmqStatus(e, "ctx");
    EXPECT_EQ(st.code(), code) << err;
    EXPECT_EQ(st.message().rfind("ctx: ", 0), 0u);
  }
}

}  // namespace
}  // namespace shoal::client
