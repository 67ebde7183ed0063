#include "shoal/controller/task_scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace shoal::controller {
namespace {

using nlohmann::json;
using Events = std::vector<std::string>;

struct TagPayload : TaskPayload {
  explicit TagPayload(std::string t) : tag(std::move(t)) {}
  std::string tag;
};

// Records every sink call as one readable line: "send t1 e1", "reply t1 e1",
// "fail t2 ImpossibleDependency", "fail t3 EngineError e1".
class RecordingSink : public TaskSink {
 public:
  void SendToEngine(const std::string& engine_uuid, const Task& task) override {
    // The payload must stay with the scheduler: check it is intact on every (re)send.
    auto* payload = dynamic_cast<const TagPayload*>(task.payload.get());
    EXPECT_NE(payload, nullptr);
    if (payload) {
      EXPECT_EQ(payload->tag, "payload of " + task.spec.msg_id);
    }
    events.push_back("send " + task.spec.msg_id + " " + engine_uuid);
  }
  void DeliverReply(const Task& task, const std::string& engine_uuid) override {
    events.push_back("reply " + task.spec.msg_id + " " + engine_uuid);
  }
  void DeliverFailure(const Task& task, TaskFailure why, const std::string& engine_uuid) override {
    std::string line = "fail " + task.spec.msg_id + " " + TaskFailureName(why);
    if (!engine_uuid.empty()) line += " " + engine_uuid;
    events.push_back(line);
  }
  Events events;
};

class TaskSchedulerTest : public ::testing::Test {
 protected:
  void Make(TaskScheduler::Options options = {}) {
    sched_ = std::make_unique<TaskScheduler>(options, clock_, sink_);
  }
  void Make(int hwm, Scheme scheme = Scheme::kLeastLoad) {
    TaskScheduler::Options o;
    o.hwm = hwm;
    o.scheme = scheme;
    Make(o);
  }
  // Submits `id` with metadata parsed the way the controller will parse it.
  void Submit(const std::string& id, const std::string& metadata = "{}") {
    auto spec = ParseTaskSpec(id, json::parse(metadata));
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    sched_->Submit(std::move(spec).value(), std::make_unique<TagPayload>("payload of " + id));
  }
  void Engines(std::initializer_list<const char*> uuids) {
    for (const char* u : uuids) sched_->AddEngine(u);
  }
  bool Reply(const std::string& engine, const std::string& id, bool ok = true,
             bool dependencies_met = true) {
    return sched_->OnEngineReply(engine, id, ok, dependencies_met);
  }
  // The sink calls since the last Take().
  Events Take() { return std::exchange(sink_.events, {}); }
  void AdvanceMillis(int64_t ms) {
    clock_.AdvanceMillis(ms);
    sched_->OnTimer();
  }

  FakeClock clock_;
  RecordingSink sink_;
  std::unique_ptr<TaskScheduler> sched_;
};

// ---- ParseTaskSpec / names --------------------------------------------------------------------

TEST(TaskFailureName, Enames) {
  EXPECT_STREQ(TaskFailureName(TaskFailure::kImpossibleDependency), "ImpossibleDependency");
  EXPECT_STREQ(TaskFailureName(TaskFailure::kInvalidDependency), "InvalidDependency");
  EXPECT_STREQ(TaskFailureName(TaskFailure::kTaskTimeout), "TaskTimeout");
  EXPECT_STREQ(TaskFailureName(TaskFailure::kEngineDied), "EngineError");
}

TEST(ParseTaskSpec, Defaults) {
  for (const char* md : {"null", "{}", R"({"after":null,"follow":null,"timeout":null,
                                          "targets":null,"retries":null,"label":"x"})",
                         R"({"after":[],"follow":[],"timeout":0,"targets":[],"retries":0})"}) {
    auto spec = ParseTaskSpec("m", json::parse(md));
    ASSERT_TRUE(spec.ok()) << md << ": " << spec.status().ToString();
    EXPECT_EQ(spec->msg_id, "m");
    EXPECT_TRUE(spec->after.empty());
    EXPECT_TRUE(spec->follow.empty());
    EXPECT_TRUE(spec->targets.empty());
    EXPECT_EQ(spec->timeout_s, 0);
    EXPECT_EQ(spec->retries, 0);
  }
}

TEST(ParseTaskSpec, Values) {
  // What LoadBalancedView._really_apply sends.
  auto spec = ParseTaskSpec("m", json::parse(R"({
      "after": {"dependencies": ["a", "b"], "all": false, "success": true, "failure": true},
      "follow": ["c"], "timeout": 2.5, "targets": ["e1", "e2"], "retries": 3})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->after.ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(spec->after.all);
  EXPECT_TRUE(spec->after.failure);
  EXPECT_EQ(spec->follow.ids, std::vector<std::string>{"c"});
  EXPECT_TRUE(spec->follow.all);
  EXPECT_EQ(spec->timeout_s, 2.5);
  EXPECT_EQ(spec->targets, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(spec->retries, 3);

  EXPECT_EQ(ParseTaskSpec("m", json::parse(R"({"timeout": 3})"))->timeout_s, 3);
  EXPECT_EQ(ParseTaskSpec("m", json::parse(R"({"retries": -2})"))->retries, 0);
  EXPECT_EQ(ParseTaskSpec("m", json::parse(R"({"retries": 1e3})")).ok(), false);
  EXPECT_EQ(ParseTaskSpec("m", json::parse(R"({"retries": 99999999999})"))->retries,
            std::numeric_limits<int>::max());
}

TEST(ParseTaskSpec, WrongTypes) {
  for (const char* md : {
           "[]",
           "3",
           R"({"after": 5})",
           R"({"follow": [1]})",
           R"({"after": {"dependencies": ["a"], "success": false, "failure": false}})",
           R"({"timeout": "1"})",
           R"({"timeout": true})",
           R"({"targets": "e1"})",
           R"({"targets": [1]})",
           R"({"retries": 1.5})",
           R"({"retries": "2"})",
       }) {
    auto spec = ParseTaskSpec("m", json::parse(md));
    ASSERT_FALSE(spec.ok()) << md;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << md;
  }
}

// ---- engines, hwm, LRU ------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, NewEnginesGoFirstAndUsedEnginesGoLast) {
  Make(0);
  Engines({"e1", "e2", "e3"});
  EXPECT_EQ(sched_->Engines(), (std::vector<std::string>{"e3", "e2", "e1"}));
  Submit("t1");
  EXPECT_EQ(Take(), Events{"send t1 e3"});
  EXPECT_EQ(sched_->Engines(), (std::vector<std::string>{"e2", "e1", "e3"}));
  sched_->AddEngine("e4");
  sched_->AddEngine("e2");  // already registered: ignored
  EXPECT_EQ(sched_->Engines(), (std::vector<std::string>{"e4", "e2", "e1", "e3"}));
  sched_->RemoveEngine("e1");
  sched_->RemoveEngine("nope");
  EXPECT_EQ(sched_->Engines(), (std::vector<std::string>{"e4", "e2", "e3"}));
}

TEST_F(TaskSchedulerTest, LeastLoadWithHwm1QueuesUntilAReply) {
  Make();  // defaults: leastload, hwm 1
  Engines({"e1", "e2"});
  Submit("t1");
  Submit("t2");
  Submit("t3");
  EXPECT_EQ(Take(), (Events{"send t1 e2", "send t2 e1"}));
  EXPECT_EQ(sched_->WaitingCount(), 1u);
  EXPECT_EQ(sched_->PendingOn("e2"), std::vector<std::string>{"t1"});

  ASSERT_TRUE(Reply("e2", "t1"));
  EXPECT_EQ(Take(), (Events{"reply t1 e2", "send t3 e2"}));
  EXPECT_EQ(sched_->WaitingCount(), 0u);
}

TEST_F(TaskSchedulerTest, WaitingTasksGoOldestFirst) {
  Make(1);
  Engines({"e1"});
  for (const char* id : {"t1", "t2", "t3", "t4"}) Submit(id);
  Take();
  for (const char* id : {"t1", "t2", "t3"}) {
    ASSERT_TRUE(Reply("e1", id));
  }
  EXPECT_EQ(Take(), (Events{"reply t1 e1", "send t2 e1", "reply t2 e1", "send t3 e1", "reply t3 e1",
                            "send t4 e1"}));
}

TEST_F(TaskSchedulerTest, HwmTable) {
  struct Case {
    int hwm;
    int tasks;
    Events sends;
    size_t waiting;
  } cases[] = {
      // hwm 0 = unlimited: leastload spreads evenly, LRU breaking ties.
      {0, 5, {"send t1 e2", "send t2 e1", "send t3 e2", "send t4 e1", "send t5 e2"}, 0},
      {1, 3, {"send t1 e2", "send t2 e1"}, 1},
      {2, 5, {"send t1 e2", "send t2 e1", "send t3 e2", "send t4 e1"}, 1},
  };
  for (const auto& c : cases) {
    Make(c.hwm);
    Take();
    Engines({"e1", "e2"});
    for (int i = 1; i <= c.tasks; ++i) Submit("t" + std::to_string(i));
    EXPECT_EQ(Take(), c.sends) << "hwm " << c.hwm;
    EXPECT_EQ(sched_->WaitingCount(), c.waiting) << "hwm " << c.hwm;
  }
}

TEST_F(TaskSchedulerTest, LeastLoadPrefersTheLessLoadedOverLru) {
  Make(0);
  Engines({"e1", "e2"});
  Submit("t1");  // e2
  Submit("t2");  // e1
  Submit("t3");  // e2 (both at 1, e2 is LRU)
  ASSERT_TRUE(Reply("e1", "t2"));
  Submit("t4");  // e1: load 0 against 2
  Take();
  // Now e2 (load 2) is the least recently used and e1 (load 1) the most.
  Submit("t5");
  EXPECT_EQ(Take(), Events{"send t5 e1"});
}

TEST_F(TaskSchedulerTest, LruSchemeRoundRobins) {
  Make(0, Scheme::kLru);
  Engines({"e1", "e2", "e3"});
  for (int i = 1; i <= 6; ++i) Submit("t" + std::to_string(i));
  EXPECT_EQ(Take(), (Events{"send t1 e3", "send t2 e2", "send t3 e1", "send t4 e3", "send t5 e2",
                            "send t6 e1"}));
}

TEST_F(TaskSchedulerTest, RandomSchemesAreReproducibleAndRespectHwm) {
  for (Scheme s : {Scheme::kPlainRandom, Scheme::kTwoBin, Scheme::kWeighted}) {
    Events first;
    for (int round = 0; round < 2; ++round) {
      TaskScheduler::Options o;
      o.scheme = s;
      o.hwm = 2;
      o.seed = 1234;
      Make(o);
      Take();
      Engines({"e1", "e2", "e3"});
      for (int i = 1; i <= 8; ++i) Submit("t" + std::to_string(i));
      Events sends = Take();
      ASSERT_EQ(sends.size(), 6u) << SchemeName(s);  // 3 engines x hwm 2
      std::map<char, int> per_engine;
      for (const auto& e : sends) ++per_engine[e.back()];
      for (auto [engine, n] : per_engine) EXPECT_LE(n, 2) << SchemeName(s);
      if (round == 0) first = sends;
      if (round == 1) {
        EXPECT_EQ(sends, first) << SchemeName(s);
      }
    }
  }
}

TEST_F(TaskSchedulerTest, NoEnginesTasksWaitThenRunOnRegistration) {
  Make();
  Submit("t1");
  Submit("t2", R"({"targets": ["e9"]})");  // waits too: no engine at all yet
  EXPECT_EQ(Take(), Events{});
  EXPECT_EQ(sched_->WaitingCount(), 2u);
  sched_->AddEngine("e1");
  EXPECT_EQ(Take(), Events{"send t1 e1"});
  sched_->AddEngine("e9");
  EXPECT_EQ(Take(), Events{"send t2 e9"});
}

// ---- targets ----------------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, TargetsRestrictTheChoice) {
  Make();
  Engines({"e1", "e2", "e3"});
  Submit("t1", R"({"targets": ["e1"]})");
  Submit("t2", R"({"targets": ["e1", "e2"]})");
  Submit("t3", R"({"targets": ["e1"]})");  // e1 is busy: waits though e3 is idle
  Submit("t4");
  EXPECT_EQ(Take(), (Events{"send t1 e1", "send t2 e2", "send t4 e3"}));
  EXPECT_EQ(sched_->WaitingCount(), 1u);
  ASSERT_TRUE(Reply("e3", "t4"));
  EXPECT_EQ(Take(), Events{"reply t4 e3"});
  ASSERT_TRUE(Reply("e1", "t1"));
  EXPECT_EQ(Take(), (Events{"reply t1 e1", "send t3 e1"}));
}

TEST_F(TaskSchedulerTest, TargetsThatAreNotRegisteredAreImpossible) {
  Make();
  Engines({"e1"});
  Submit("t1", R"({"targets": ["gone"]})");
  EXPECT_EQ(Take(), Events{"fail t1 ImpossibleDependency"});
  EXPECT_TRUE(sched_->IsKnownTask("t1"));
}

TEST_F(TaskSchedulerTest, WaitingTaskWhoseTargetLeavesIsImpossible) {
  Make();
  Engines({"e1", "e2"});
  Submit("t1", R"({"targets": ["e1"]})");
  Submit("t2", R"({"targets": ["e1"]})");
  EXPECT_EQ(Take(), Events{"send t1 e1"});
  sched_->RemoveEngine("e1");
  EXPECT_EQ(Take(), Events{"fail t2 ImpossibleDependency"});
}

// ---- after / follow ---------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, AfterWaitsAndDependantIsSentAfterTheReply) {
  Make(0);
  Engines({"e1", "e2"});
  Submit("t1");
  Submit("t2", R"({"after": ["t1"]})");
  EXPECT_EQ(Take(), Events{"send t1 e2"});
  EXPECT_EQ(sched_->WaitingCount(), 1u);
  ASSERT_TRUE(Reply("e2", "t1"));
  // DeliverReply first, then the dependant.
  EXPECT_EQ(Take(), (Events{"reply t1 e2", "send t2 e1"}));
}

TEST_F(TaskSchedulerTest, AfterOutcomesTable) {
  struct Case {
    const char* name;
    const char* after;  // on t1 (and t2 where named)
    bool t1_ok;
    Events want;  // after t1's reply
  } cases[] = {
      {"success-only, t1 ok", R"(["t1"])", true, {"reply t1 e1", "send t3 e1"}},
      {"success-only, t1 failed",
       R"(["t1"])",
       false,
       {"reply t1 e1", "fail t3 ImpossibleDependency"}},
      {"failure-only, t1 failed",
       R"({"dependencies":["t1"],"success":false,"failure":true})",
       false,
       {"reply t1 e1", "send t3 e1"}},
      {"failure-only, t1 ok",
       R"({"dependencies":["t1"],"success":false,"failure":true})",
       true,
       {"reply t1 e1", "fail t3 ImpossibleDependency"}},
      {"either, t1 failed",
       R"({"dependencies":["t1"],"success":true,"failure":true})",
       false,
       {"reply t1 e1", "send t3 e1"}},
      {"all of t1 t2, t2 still running", R"(["t1","t2"])", true, {"reply t1 e1"}},
      {"any of t1 t2",
       R"({"dependencies":["t1","t2"],"all":false})",
       true,
       {"reply t1 e1", "send t3 e1"}},
      {"any of t1 t2, t1 failed",
       R"({"dependencies":["t1","t2"],"all":false})",
       false,
       {"reply t1 e1"}},
  };
  for (const auto& c : cases) {
    Make(1);
    Take();
    Engines({"e1", "e2"});  // LRU: e2, e1
    Submit("t2");           // e2, stays running
    Submit("t1");           // e1
    Submit("t3", std::string(R"({"after": )") + c.after + "}");
    EXPECT_EQ(Take(), (Events{"send t2 e2", "send t1 e1"})) << c.name;
    ASSERT_TRUE(Reply("e1", "t1", c.t1_ok)) << c.name;
    EXPECT_EQ(Take(), c.want) << c.name;
  }
}

TEST_F(TaskSchedulerTest, AfterAlreadySatisfiedRunsAtOnce) {
  Make();
  Engines({"e1"});
  Submit("t1");
  ASSERT_TRUE(Reply("e1", "t1"));
  Take();
  Submit("t2", R"({"after": ["t1"], "timeout": 1})");
  EXPECT_EQ(Take(), Events{"send t2 e1"});
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);  // never parked: no timer
}

TEST_F(TaskSchedulerTest, AfterAlreadyFailedIsImpossibleAtSubmit) {
  Make();
  Engines({"e1"});
  Submit("t1");
  ASSERT_TRUE(Reply("e1", "t1", /*ok=*/false));
  Take();
  Submit("t2", R"({"after": ["t1"]})");
  Submit("t3", R"({"after": {"dependencies": ["t1"], "success": false, "failure": true}})");
  EXPECT_EQ(Take(), (Events{"fail t2 ImpossibleDependency", "send t3 e1"}));
}

TEST_F(TaskSchedulerTest, ImpossibilityCascadesInOrder) {
  Make(0);
  Engines({"e1"});
  Submit("t1");
  Submit("t2", R"({"after": ["t1"]})");
  Submit("t3", R"({"after": ["t2"]})");
  Submit("t4", R"({"after": {"dependencies": ["t2"], "success": false, "failure": true}})");
  Take();
  ASSERT_TRUE(Reply("e1", "t1", /*ok=*/false));
  // t2 failed in the scheduler: t3 (needs its success) is impossible, t4 (needs its failure)
  // runs, each only after the failure it depends on was delivered.
  EXPECT_EQ(Take(), (Events{"reply t1 e1", "fail t2 ImpossibleDependency",
                            "fail t3 ImpossibleDependency", "send t4 e1"}));
  EXPECT_EQ(sched_->WaitingCount(), 0u);
}

TEST_F(TaskSchedulerTest, LongChainsDoNotRecurse) {
  Make(0);
  Engines({"e1"});
  Submit("c0");
  const int n = 20000;
  for (int i = 1; i <= n; ++i) {
    Submit("c" + std::to_string(i), R"({"after": ["c)" + std::to_string(i - 1) + R"("]})");
  }
  Take();
  ASSERT_TRUE(Reply("e1", "c0", /*ok=*/false));
  Events events = Take();
  ASSERT_EQ(events.size(), static_cast<size_t>(n) + 1);
  EXPECT_EQ(events.back(), "fail c" + std::to_string(n) + " ImpossibleDependency");
  EXPECT_EQ(sched_->WaitingCount(), 0u);
}

TEST_F(TaskSchedulerTest, FollowRunsWhereTheFollowedTaskRan) {
  Make(0);
  Engines({"e1", "e2"});
  Submit("t1");  // e2
  ASSERT_TRUE(Reply("e2", "t1"));
  Submit("t2", R"({"follow": ["t1"]})");
  Submit("t3", R"({"follow": ["t1"]})");
  EXPECT_EQ(Take(), (Events{"send t1 e2", "reply t1 e2", "send t2 e2", "send t3 e2"}));
}

TEST_F(TaskSchedulerTest, FollowOfARunningTaskWaitsForIt) {
  Make(1);
  Engines({"e1", "e2"});
  Submit("t1");                           // e2
  Submit("t2", R"({"follow": ["t1"]})");  // e1 is free but t1 has not finished anywhere
  EXPECT_EQ(Take(), Events{"send t1 e2"});
  EXPECT_EQ(sched_->WaitingCount(), 1u);
  ASSERT_TRUE(Reply("e2", "t1"));
  EXPECT_EQ(Take(), (Events{"reply t1 e2", "send t2 e2"}));
}

TEST_F(TaskSchedulerTest, FollowTable) {
  struct Case {
    const char* name;
    const char* follow;
    Events want;
  } cases[] = {
      // t1 ran on e2, t2 on e1 (both ok); t5 failed on e2. LRU order is then e1, e2.
      {"all on two engines", R"(["t1","t2"])", {"fail t9 ImpossibleDependency"}},
      {"any on two engines", R"({"dependencies":["t1","t2"],"all":false})", {"send t9 e1"}},
      {"one on the MRU engine", R"(["t1"])", {"send t9 e2"}},
      {"failure-only of an ok task",
       R"({"dependencies":["t1"],"success":false,"failure":true})",
       {"fail t9 ImpossibleDependency"}},
      {"failure-only of a failed task",
       R"({"dependencies":["t5"],"success":false,"failure":true})",
       {"send t9 e2"}},
      {"with targets elsewhere", R"(["t1"])", {"fail t9 ImpossibleDependency"}},
  };
  for (const auto& c : cases) {
    Make(0);
    Take();
    Engines({"e1", "e2"});
    Submit("t1");
    Submit("t2");
    Submit("t5");
    EXPECT_EQ(Take(), (Events{"send t1 e2", "send t2 e1", "send t5 e2"}));
    ASSERT_TRUE(Reply("e2", "t1"));
    ASSERT_TRUE(Reply("e1", "t2"));
    ASSERT_TRUE(Reply("e2", "t5", false));
    Take();
    std::string md = std::string(R"({"follow": )") + c.follow;
    if (std::string(c.name) == "with targets elsewhere") md += R"(, "targets": ["e1"])";
    Submit("t9", md + "}");
    EXPECT_EQ(Take(), c.want) << c.name;
  }
}

TEST_F(TaskSchedulerTest, FollowOfATaskOnADeadEngineIsImpossible) {
  Make(0);
  Engines({"e1", "e2"});
  Submit("t1");
  ASSERT_TRUE(Reply("e2", "t1"));
  sched_->RemoveEngine("e2");
  Take();
  Submit("t2", R"({"follow": ["t1"]})");
  EXPECT_EQ(Take(), Events{"fail t2 ImpossibleDependency"});
}

// ---- invalid dependencies ---------------------------------------------------------------------

TEST_F(TaskSchedulerTest, HistoryKeepsTheLastFinalTasksOnly) {
  TaskScheduler::Options o;
  o.history_limit = 2;
  Make(o);
  Engines({"e1"});
  for (const char* id : {"t1", "t2", "t3"}) {
    Submit(id);
    ASSERT_TRUE(Reply("e1", id));
  }
  Take();
  EXPECT_FALSE(sched_->IsKnownTask("t1"));  // forgotten: the history holds two
  EXPECT_TRUE(sched_->IsKnownTask("t2"));
  Submit("t4", R"({"after": ["t1"]})");
  EXPECT_EQ(Take(), Events{"fail t4 InvalidDependency"});
  Submit("t5", R"({"after": ["t3"]})");  // t4 (final) pushed t2 out, t3 is still there
  EXPECT_EQ(Take(), Events{"send t5 e1"});
  EXPECT_TRUE(sched_->IsKnownTask("t3"));
  EXPECT_FALSE(sched_->IsKnownTask("t2"));
}

TEST_F(TaskSchedulerTest, InvalidDependencyTable) {
  struct Case {
    const char* name;
    const char* metadata;
  } cases[] = {
      {"after self", R"({"after": ["t9"]})"},
      {"follow self", R"({"follow": ["t9"]})"},
      {"after unknown", R"({"after": ["12345"]})"},
      {"follow unknown", R"({"follow": ["t1", "nope"]})"},
      {"any with an unknown", R"({"after": {"dependencies": ["t1", "nope"], "all": false}})"},
  };
  for (const auto& c : cases) {
    Make();
    Take();
    Engines({"e1"});
    Submit("t1");
    ASSERT_TRUE(Reply("e1", "t1"));
    Take();
    Submit("t9", c.metadata);
    EXPECT_EQ(Take(), Events{"fail t9 InvalidDependency"}) << c.name;
    EXPECT_TRUE(sched_->IsKnownTask("t9"));
    // ... and it counts as failed for later dependants.
    Submit("t10", R"({"after": ["t9"]})");
    EXPECT_EQ(Take(), Events{"fail t10 ImpossibleDependency"}) << c.name;
  }
}

// ---- timeouts ---------------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, TimeoutFiresWhileWaiting) {
  Make();
  Engines({"e1"});
  Submit("t1");
  Submit("t2", R"({"timeout": 0.5})");
  EXPECT_EQ(Take(), Events{"send t1 e1"});
  EXPECT_EQ(sched_->NextDeadline(), clock_.MonotonicMicros() + 500 * kMicrosPerMilli);
  AdvanceMillis(499);
  EXPECT_EQ(Take(), Events{});
  AdvanceMillis(1);
  EXPECT_EQ(Take(), Events{"fail t2 TaskTimeout"});
  EXPECT_EQ(sched_->WaitingCount(), 0u);
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);
  ASSERT_TRUE(Reply("e1", "t1"));
  EXPECT_EQ(Take(), Events{"reply t1 e1"});  // nothing left to send
}

TEST_F(TaskSchedulerTest, TimeoutWaitingForAfter) {
  // upstream, verified live: `after` on a 3 s task with timeout=0.5 -> TaskTimeout at 0.5 s.
  Make(0);
  Engines({"e1"});
  Submit("t1");
  Submit("t2", R"({"after": ["t1"], "timeout": 0.5})");
  Submit("t3", R"({"after": ["t2"]})");
  Take();
  AdvanceMillis(500);
  EXPECT_EQ(Take(), (Events{"fail t2 TaskTimeout", "fail t3 ImpossibleDependency"}));
}

TEST_F(TaskSchedulerTest, RunningTaskNeverTimesOut) {
  Make();
  Engines({"e1"});
  Submit("t1", R"({"timeout": 0.1})");
  EXPECT_EQ(Take(), Events{"send t1 e1"});
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);
  AdvanceMillis(10'000);
  EXPECT_EQ(Take(), Events{});
  ASSERT_TRUE(Reply("e1", "t1"));
  EXPECT_EQ(Take(), Events{"reply t1 e1"});
}

TEST_F(TaskSchedulerTest, TimerStopsOnDispatchAndRestartsOnRepark) {
  Make();
  Engines({"e1", "e2"});
  Submit("a");  // e2
  Submit("b");  // e1
  Submit("t", R"({"timeout": 1})");
  Take();
  AdvanceMillis(800);
  ASSERT_TRUE(Reply("e1", "b"));
  EXPECT_EQ(Take(), (Events{"reply b e1", "send t e1"}));
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);
  AdvanceMillis(100);
  // Refused at 0.9 s: e2 is still busy, so it waits again with a fresh 1 s timer.
  ASSERT_TRUE(Reply("e1", "t", /*ok=*/false, /*dependencies_met=*/false));
  EXPECT_EQ(Take(), Events{});
  EXPECT_EQ(sched_->NextDeadline(), clock_.MonotonicMicros() + kMicrosPerSecond);
  AdvanceMillis(200);  // past the first timer's 1.0 s
  EXPECT_EQ(Take(), Events{});
  AdvanceMillis(800);
  EXPECT_EQ(Take(), Events{"fail t TaskTimeout"});
}

// ---- retries and refusals ---------------------------------------------------------------------

TEST_F(TaskSchedulerTest, RetriesGoToAnotherEngine) {
  Make();
  Engines({"e1", "e2", "e3"});
  Submit("t1", R"({"retries": 1})");
  ASSERT_TRUE(Reply("e3", "t1", /*ok=*/false));
  ASSERT_TRUE(Reply("e2", "t1", /*ok=*/false));  // retries used up: final
  EXPECT_EQ(Take(), (Events{"send t1 e3", "send t1 e2", "reply t1 e2"}));
}

TEST_F(TaskSchedulerTest, RetryNeverReusesAnEngineEvenIfItIsTheOnlyFreeOne) {
  Make();
  Engines({"e1", "e2"});
  Submit("busy");                     // e2
  Submit("t1", R"({"retries": 5})");  // e1
  ASSERT_TRUE(Reply("e1", "t1", /*ok=*/false));
  EXPECT_EQ(Take(), (Events{"send busy e2", "send t1 e1"}));
  EXPECT_EQ(sched_->WaitingCount(), 1u);  // e1 is free but blacklisted
  ASSERT_TRUE(Reply("e2", "busy"));
  EXPECT_EQ(Take(), (Events{"reply busy e2", "send t1 e2"}));
}

TEST_F(TaskSchedulerTest, RetriesExhaustingEveryEngineWaitUntilTimeout) {
  // upstream test_retries: retries=len(engines), timeout=0.1 -> TaskTimeout.
  Make();
  Engines({"e1", "e2"});
  Submit("t1", R"({"retries": 2, "timeout": 0.1})");
  ASSERT_TRUE(Reply("e2", "t1", false));
  ASSERT_TRUE(Reply("e1", "t1", false));
  EXPECT_EQ(Take(), (Events{"send t1 e2", "send t1 e1"}));
  AdvanceMillis(100);
  EXPECT_EQ(Take(), Events{"fail t1 TaskTimeout"});
}

TEST_F(TaskSchedulerTest, RefusalsDoNotConsumeRetries) {
  struct Case {
    const char* name;
    int retries;
    std::vector<std::pair<bool, bool>> replies;  // (ok, dependencies_met) on successive engines
    Events want;
  } cases[] = {
      {"refused twice then ok",
       0,
       {{false, false}, {false, false}, {true, true}},
       {"send t e3", "send t e2", "send t e1", "reply t e1"}},
      {"refused then failed, no retries",
       0,
       {{false, false}, {false, true}},
       {"send t e3", "send t e2", "reply t e2"}},
      {"refused, failed, failed with one retry",
       1,
       {{false, false}, {false, true}, {false, true}},
       {"send t e3", "send t e2", "send t e1", "reply t e1"}},
      // An aborted reply is "not ok" like an error.
  };
  for (const auto& c : cases) {
    Make();
    Take();
    Engines({"e1", "e2", "e3"});
    Submit("t", R"({"retries": )" + std::to_string(c.retries) + "}");
    const char* order[] = {"e3", "e2", "e1"};
    for (size_t i = 0; i < c.replies.size(); ++i) {
      ASSERT_TRUE(Reply(order[i], "t", c.replies[i].first, c.replies[i].second)) << c.name;
    }
    EXPECT_EQ(Take(), c.want) << c.name;
  }
}

TEST_F(TaskSchedulerTest, RefusedByEveryTargetIsImpossible) {
  Make();
  Engines({"e1", "e2", "e3"});
  Submit("t", R"({"targets": ["e1", "e2"]})");
  ASSERT_TRUE(Reply("e2", "t", false, false));
  ASSERT_TRUE(Reply("e1", "t", false, false));
  EXPECT_EQ(Take(), (Events{"send t e2", "send t e1", "fail t ImpossibleDependency"}));
}

TEST_F(TaskSchedulerTest, RefusalFreesTheEngineForOthers) {
  Make();
  Engines({"e1"});
  Submit("t1");
  Submit("t2");
  ASSERT_TRUE(Reply("e1", "t1", false, false));  // t1 cannot go anywhere else: parked
  EXPECT_EQ(Take(), (Events{"send t1 e1", "send t2 e1"}));
  EXPECT_EQ(sched_->WaitingCount(), 1u);
  sched_->AddEngine("e2");
  EXPECT_EQ(Take(), Events{"send t1 e2"});
}

// ---- engine death -----------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, ConfirmedDeathFailsStrandedTasksAtOnce) {
  Make(0);
  Engines({"e1"});
  Submit("t1");
  Submit("t2");
  Take();
  // The engine's watchdog saw the process end: no reply can come, so no grace.
  sched_->RemoveEngine("e1", /*confirmed_dead=*/true);
  EXPECT_EQ(Take(), (Events{"fail t1 EngineError e1", "fail t2 EngineError e1"}));
  EXPECT_EQ(sched_->PendingOn("e1"), std::vector<std::string>{});
}

TEST_F(TaskSchedulerTest, EngineDeathFailsStrandedTasksAfterGrace) {
  Make(0);
  Engines({"e1"});
  Submit("t1");
  Submit("t2");
  Take();
  sched_->RemoveEngine("e1");
  EXPECT_EQ(Take(), Events{});
  EXPECT_EQ(sched_->PendingOn("e1"), (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(sched_->NextDeadline(), clock_.MonotonicMicros() + 5 * kMicrosPerSecond);
  Submit("t3");  // no engine left: waits
  // A reply that arrives within the grace still counts.
  ASSERT_TRUE(Reply("e1", "t1"));
  AdvanceMillis(4999);
  EXPECT_EQ(Take(), Events{"reply t1 e1"});
  AdvanceMillis(1);
  EXPECT_EQ(Take(), Events{"fail t2 EngineError e1"});
  EXPECT_EQ(sched_->PendingOn("e1"), std::vector<std::string>{});
  EXPECT_FALSE(Reply("e1", "t2"));  // too late: already final
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);
  EXPECT_EQ(sched_->WaitingCount(), 1u);
}

TEST_F(TaskSchedulerTest, EngineDeathRetriesElsewhere) {
  Make();
  Engines({"e1", "e2"});
  Submit("t1", R"({"retries": 1})");  // e2
  Submit("t2");                       // e1
  Submit("t3", R"({"after": ["t1"]})");
  Take();
  sched_->RemoveEngine("e2");
  AdvanceMillis(5000);
  EXPECT_EQ(Take(), Events{});  // e1 is busy: t1 waits for it
  ASSERT_TRUE(Reply("e1", "t2"));
  EXPECT_EQ(Take(), (Events{"reply t2 e1", "send t1 e1"}));
  ASSERT_TRUE(Reply("e1", "t1"));
  EXPECT_EQ(Take(), (Events{"reply t1 e1", "send t3 e1"}));
}

TEST_F(TaskSchedulerTest, EngineDeathFailureReachesDependants) {
  TaskScheduler::Options o;
  o.stranded_grace = 0;  // fail at once
  Make(o);
  Engines({"e1", "e2"});
  Submit("t1");
  Submit("t2", R"({"after": ["t1"]})");
  Submit("t3", R"({"after": {"dependencies": ["t1"], "success": false, "failure": true}})");
  Take();
  sched_->RemoveEngine("e2");
  EXPECT_EQ(Take(),
            (Events{"fail t1 EngineError e2", "fail t2 ImpossibleDependency", "send t3 e1"}));
}

TEST_F(TaskSchedulerTest, EngineReRegisteringDuringGraceIsANewEngine) {
  Make();
  Engines({"e1"});
  Submit("t1");
  Take();
  sched_->RemoveEngine("e1");
  sched_->AddEngine("e1");
  Submit("t2");
  EXPECT_EQ(Take(), Events{"send t2 e1"});
  EXPECT_EQ(sched_->PendingOn("e1"), (std::vector<std::string>{"t1", "t2"}));
  AdvanceMillis(5000);
  EXPECT_EQ(Take(), Events{"fail t1 EngineError e1"});
  ASSERT_TRUE(Reply("e1", "t2"));
  EXPECT_EQ(Take(), Events{"reply t2 e1"});
}

// ---- replies ----------------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, UnexpectedRepliesAreRejected) {
  Make();
  Engines({"e1", "e2"});
  Submit("t1");  // e2
  Submit("w", R"({"after": ["t1"]})");
  Take();
  EXPECT_FALSE(Reply("e2", "unknown"));
  EXPECT_FALSE(Reply("e1", "t1"));     // not pending there
  EXPECT_FALSE(Reply("e2", "w"));      // waiting, not running
  EXPECT_FALSE(Reply("ghost", "t1"));  // unknown engine
  EXPECT_EQ(Take(), Events{});
  EXPECT_TRUE(Reply("e2", "t1"));
  EXPECT_FALSE(Reply("e2", "t1"));  // already final
  EXPECT_EQ(Take(), (Events{"reply t1 e2", "send w e1"}));
}

TEST_F(TaskSchedulerTest, DuplicateLiveMsgIdIsDropped) {
  Make();
  Engines({"e1"});
  Submit("t1");
  Submit("t1");
  EXPECT_EQ(Take(), Events{"send t1 e1"});
  EXPECT_EQ(sched_->WaitingCount(), 0u);
  EXPECT_FALSE(sched_->IsKnownTask("t2"));
}

// ---- pure -------------------------------------------------------------------------------------

TEST_F(TaskSchedulerTest, PureRoundRobinsAndIgnoresEverythingElse) {
  TaskScheduler::Options o;
  o.scheme = Scheme::kPure;
  o.hwm = 1;  // ignored
  Make(o);
  Submit("t0");  // no engine: waits
  Engines({"e1", "e2"});
  Submit("t1", R"({"after": ["nope"], "targets": ["x"], "timeout": 0.1, "retries": 3})");
  Submit("t2", R"({"follow": ["t1"]})");
  Submit("t3");
  EXPECT_EQ(Take(), (Events{"send t0 e1", "send t1 e2", "send t2 e1", "send t3 e2"}));
  AdvanceMillis(1000);
  ASSERT_TRUE(Reply("e2", "t1", /*ok=*/false, /*dependencies_met=*/false));
  EXPECT_EQ(Take(), Events{"reply t1 e2"});  // no retry, no refusal handling
  EXPECT_EQ(sched_->NextDeadline(), std::nullopt);
}

// ---- properties -------------------------------------------------------------------------------

// Random workloads; checks invariants on the event stream rather than exact choices:
// no double dispatch, never twice on one engine, only to live allowed engines, `after`
// satisfied at dispatch, exactly one final event per task.
TEST_F(TaskSchedulerTest, RandomWorkloadInvariants) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 gen(seed);
    auto roll = [&](size_t n) { return static_cast<int>(gen() % n); };
    TaskScheduler::Options o;
    o.hwm = roll(3);  // 0, 1 or 2
    o.scheme = static_cast<Scheme>(roll(5));
    o.seed = seed;
    Make(o);
    Take();

    std::map<std::string, std::string> running;  // msg_id -> engine, as the sink saw it
    std::map<std::string, int> finals;
    std::map<std::string, std::set<std::string>> tried;
    std::map<std::string, TaskSpec> specs;
    std::map<std::string, bool> reply_ok;  // outcome of the reply being handled
    std::set<std::string> engines;
    IdSet completed, failed;
    int next_engine = 0, next_task = 0;

    auto check = [&]() {
      for (const std::string& line : Take()) {
        std::istringstream in(line);
        std::string kind, id, engine;
        in >> kind >> id >> engine;
        SCOPED_TRACE(line + " seed " + std::to_string(seed));
        if (kind == "send") {
          ASSERT_EQ(running.count(id), 0u) << "double dispatch";
          ASSERT_EQ(finals[id], 0);
          ASSERT_TRUE(engines.count(engine)) << "sent to a dead engine";
          ASSERT_TRUE(tried[id].insert(engine).second) << "sent twice to one engine";
          const TaskSpec& spec = specs[id];
          if (!spec.targets.empty()) {
            ASSERT_NE(std::find(spec.targets.begin(), spec.targets.end(), engine),
                      spec.targets.end());
          }
          ASSERT_TRUE(spec.after.Check(completed, failed)) << "ran before its after";
          running[id] = engine;
        } else {
          ASSERT_EQ(finals[id]++, 0) << "finished twice";
          running.erase(id);
          if (kind == "reply" && reply_ok[id]) {
            completed.insert(id);
          } else {
            failed.insert(id);
          }
        }
      }
    };

    for (int step = 0; step < 400; ++step) {
      const int what = roll(10);
      if (what == 0 && engines.size() < 4) {
        std::string e = "e" + std::to_string(next_engine++);
        engines.insert(e);
        sched_->AddEngine(e);
      } else if (what < 5) {
        std::string id = "t" + std::to_string(next_task++);
        json md = json::object();
        if (next_task > 1 && roll(3) == 0) {
          md["after"] = {"t" + std::to_string(roll(next_task - 1))};
        }
        if (next_task > 1 && roll(6) == 0) {
          md["follow"] = {{"dependencies", {"t" + std::to_string(roll(next_task - 1))}},
                          {"all", roll(2) == 0}};
        }
        if (roll(5) == 0 && !engines.empty()) {
          md["targets"] = {*std::next(engines.begin(), roll(engines.size()))};
        }
        if (roll(4) == 0) md["retries"] = roll(3);
        if (roll(4) == 0) md["timeout"] = 0.05 * (1 + roll(4));
        auto spec = ParseTaskSpec(id, md);
        ASSERT_TRUE(spec.ok());
        specs[id] = *spec;
        sched_->Submit(std::move(spec).value(), std::make_unique<TagPayload>("payload of " + id));
      } else if (what < 8 && !running.empty()) {
        auto it = std::next(running.begin(), roll(running.size()));
        const std::string id = it->first, engine = it->second;
        const bool ok = roll(4) != 0, met = roll(6) != 0;
        reply_ok[id] = ok;
        running.erase(it);
        ASSERT_TRUE(sched_->OnEngineReply(engine, id, ok, met));
      } else if (what == 8 && engines.size() > 1) {
        std::string e = *std::next(engines.begin(), roll(engines.size()));
        engines.erase(e);
        sched_->RemoveEngine(e);
        // Its tasks come back (retry or EngineError) after the grace; forget them until then.
        std::erase_if(running, [&](const auto& kv) { return kv.second == e; });
      } else {
        clock_.AdvanceMillis(20 + roll(2000));
        sched_->OnTimer();
      }
      check();
    }
    // Drain: answer everything and let the timers fire, until nothing moves.
    for (int round = 0; round < 200 && (sched_->WaitingCount() > 0 || !running.empty() ||
                                        sched_->NextDeadline().has_value());
         ++round) {
      while (!running.empty()) {
        auto [id, engine] = *running.begin();
        running.erase(running.begin());
        reply_ok[id] = true;
        ASSERT_TRUE(sched_->OnEngineReply(engine, id, true, true));
        check();
      }
      clock_.AdvanceMillis(6000);
      sched_->OnTimer();
      check();
    }
    // What still waits has no timeout and waits for something that may never come (a task
    // refused everywhere, a follow of a task whose engine died); everything else is final.
    for (const auto& [id, spec] : specs) {
      if (finals[id] == 0) {
        EXPECT_EQ(spec.timeout_s, 0)
            << id << " seed " << seed << " waiting " << sched_->WaitingCount() << " running "
            << running.size() << " tried " << tried[id].size() << " engines " << engines.size()
            << " after " << json(spec.after.ids) << " follow " << json(spec.follow.ids);
      } else {
        EXPECT_EQ(finals[id], 1) << id;
      }
    }
  }
}

// Guards against accidental O(n^2): 50k tasks through a saturated cluster must take well
// under a second in an optimised build (the bound here is generous for Debug and sanitizers).
TEST_F(TaskSchedulerTest, ThroughputSmoke) {
  Make();
  const int engines = 8, tasks = 50000;
  for (int i = 0; i < engines; ++i) sched_->AddEngine("engine-" + std::to_string(i));
  std::vector<std::string> ids;
  for (int i = 0; i < tasks; ++i)
    ids.push_back("c8a1b2f0-4e7d-4c61-9a3e-5b2d1f0e9a77_" + std::to_string(i));
  const auto start = std::chrono::steady_clock::now();
  for (const auto& id : ids) {
    auto spec = ParseTaskSpec(id, json::object());
    sched_->Submit(std::move(spec).value(), std::make_unique<TagPayload>("payload of " + id));
  }
  EXPECT_EQ(sched_->WaitingCount(), static_cast<size_t>(tasks - engines));
  // Answer in dispatch order.
  for (size_t i = 0; i < sink_.events.size(); ++i) {
    std::string line = sink_.events[i];
    if (line.rfind("send ", 0) != 0) continue;
    auto space = line.rfind(' ');
    ASSERT_TRUE(
        sched_->OnEngineReply(line.substr(space + 1), line.substr(5, space - 5), true, true));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(sched_->WaitingCount(), 0u);
  EXPECT_EQ(sink_.events.size(), static_cast<size_t>(2 * tasks));
  std::printf("[ throughput ] %d tasks in %.3f s: %.2f us/task (incl. test overhead)\n", tasks,
              secs, secs * 1e6 / tasks);
  EXPECT_LT(secs, 20.0);
}

}  // namespace
}  // namespace shoal::controller
