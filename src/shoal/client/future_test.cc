#include "shoal/future.h"

#include <gtest/gtest.h>

#include <thread>

namespace shoal {
namespace {

using std::chrono::milliseconds;

TEST(FutureTest, GetTimesOutThenSucceeds) {
  Promise<int> p;
  Future<int> f = p.future();
  EXPECT_FALSE(f.ready());
  auto r = f.Get(milliseconds(10));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimedOut);
  EXPECT_TRUE(p.Set(7));
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(*f.Get(milliseconds(0)), 7);
}

TEST(FutureTest, FirstSetWins) {
  Promise<int> p;
  EXPECT_TRUE(p.Set(1));
  EXPECT_FALSE(p.Set(2));
  EXPECT_FALSE(p.Set(Status::Cancelled("x")));
  EXPECT_EQ(*p.future().Get(milliseconds(0)), 1);
}

TEST(FutureTest, DroppedPromiseCancels) {
  Future<int> f;
  {
    Promise<int> p;
    f = p.future();
  }
  auto r = f.Get(milliseconds(0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
}

TEST(FutureTest, MovedFromPromiseDoesNotCancel) {
  Promise<int> a;
  Future<int> f = a.future();
  Promise<int> b = std::move(a);
  EXPECT_FALSE(f.ready());
  b.Set(3);
  EXPECT_EQ(*f.Get(milliseconds(0)), 3);
}

TEST(FutureTest, CallbacksRunOnceBeforeAndAfter) {
  Promise<int> p;
  Future<int> f = p.future();
  int before = 0, after = 0;
  f.OnReady([&](const Result<int>& r) { before += *r; });
  p.Set(5);
  f.OnReady([&](const Result<int>& r) { after += *r; });
  p.Set(6);
  EXPECT_EQ(before, 5);
  EXPECT_EQ(after, 5);
}

TEST(FutureTest, WaitWakesAcrossThreads) {
  Promise<int> p;
  Future<int> f = p.future();
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(20));
    p.Set(9);
  });
  EXPECT_TRUE(f.Wait(std::chrono::seconds(10)));
  t.join();
  EXPECT_EQ(*f.Get(milliseconds(0)), 9);
}

TEST(FutureTest, InvalidFuture) {
  Future<int> f;
  EXPECT_FALSE(f.valid());
  EXPECT_FALSE(f.Wait(milliseconds(0)));
  EXPECT_EQ(f.Get(milliseconds(0)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal
