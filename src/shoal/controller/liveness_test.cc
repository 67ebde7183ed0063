#include <gtest/gtest.h>

#include "shoal/controller/engine_registry.h"
#include "shoal/controller/heart_monitor.h"

namespace shoal::controller {
namespace {

TEST(HeartMonitor, NewHeartsAndFailures) {
  HeartMonitor hm(/*max_misses=*/2);
  auto b0 = hm.Beat(1.0);
  EXPECT_EQ(b0.ping, "1");
  EXPECT_TRUE(hm.OnPong("a", "1"));  // new at its first pong, not at the next beat
  EXPECT_TRUE(hm.IsBeating("a"));
  EXPECT_FALSE(hm.OnPong("a", "1"));
  EXPECT_FALSE(hm.OnPong("b", "nonsense"));
  EXPECT_FALSE(hm.IsBeating("b"));
  auto b1 = hm.Beat(2.0);
  EXPECT_TRUE(b1.failed_hearts.empty());
  // a late pong (previous ping) still counts
  hm.OnPong("a", "1");
  EXPECT_TRUE(hm.Beat(3.0).failed_hearts.empty());
  // three silent beats: misses 1, 2, then 3 > 2 fails
  EXPECT_TRUE(hm.Beat(4.0).failed_hearts.empty());
  EXPECT_TRUE(hm.Beat(5.0).failed_hearts.empty());
  EXPECT_EQ(hm.Beat(6.0).failed_hearts, std::vector<std::string>{"a"});
  EXPECT_FALSE(hm.IsBeating("a"));
}

TEST(HeartMonitor, AnsweringResetsMisses) {
  HeartMonitor hm(1);
  hm.Beat(1);
  hm.OnPong("a", "1");
  hm.Beat(2);
  hm.Beat(3);  // miss 1
  hm.OnPong("a", "3");
  EXPECT_TRUE(hm.Beat(4).failed_hearts.empty());
  hm.Beat(5);  // miss 1
  EXPECT_EQ(hm.Beat(6).failed_hearts.size(), 1u);
}

TEST(EngineRegistry, IdsRequestedThenCounter) {
  EngineRegistry r;
  EXPECT_EQ(*r.BeginRegistration("u0", std::nullopt, 100), 0);
  EXPECT_EQ(*r.BeginRegistration("u5", 5, 100), 5);
  EXPECT_EQ(*r.BeginRegistration("u6", 5, 100), 6);  // 5 taken (pending) -> counter
  EXPECT_EQ(r.BeginRegistration("u5", std::nullopt, 100).status().message(), "uuid 'u5' in use");
  ASSERT_TRUE(r.CompleteRegistration("u5"));
  EXPECT_EQ(r.BeginRegistration("u5", std::nullopt, 100).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(r.FindByUuid("u5")->id, 5);
  EXPECT_EQ(r.engines().size(), 1u);
  EXPECT_FALSE(r.CompleteRegistration("nobody"));
}

TEST(EngineRegistry, StalledRegistrationsExpire) {
  EngineRegistry r;
  ASSERT_TRUE(r.BeginRegistration("a", std::nullopt, 10).ok());
  ASSERT_TRUE(r.BeginRegistration("b", std::nullopt, 20).ok());
  EXPECT_EQ(*r.NextStallDeadline(), 10);
  auto gone = r.ExpireStalled(15);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].uuid, "a");
  EXPECT_TRUE(r.IsPending("b"));
  // ids are never reused
  EXPECT_EQ(*r.BeginRegistration("c", std::nullopt, 30), 2);
}

TEST(EngineRegistry, UnregisterAndState) {
  EngineRegistry r;
  (void)r.BeginRegistration("a", std::nullopt, 10);
  (void)r.BeginRegistration("b", std::nullopt, 10);
  r.CompleteRegistration("a");
  bool was = true;
  ASSERT_TRUE(r.Unregister(1, &was));  // pending b cancelled
  EXPECT_FALSE(was);
  auto state = r.StateJson();
  EXPECT_EQ(state["engines"]["0"], "a");
  EXPECT_EQ(state["next_id"], 2);
  EngineRegistry back;
  ASSERT_TRUE(back.Restore(state).ok());
  EXPECT_EQ(back.FindById(0)->uuid, "a");
  EXPECT_EQ(*back.BeginRegistration("z", std::nullopt, 1), 2);
  EXPECT_TRUE(back.UnregisterUuid("a"));
  EXPECT_FALSE(back.UnregisterUuid("a"));
  EXPECT_FALSE(back.Restore(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace shoal::controller
