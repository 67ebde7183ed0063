#include "shoal/controller/dependency.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace shoal::controller {
namespace {

using nlohmann::json;

Dependency Dep(std::vector<std::string> ids, bool all, bool success, bool failure) {
  return Dependency{std::move(ids), all, success, failure};
}

// Completed: a, b.  Failed: x, y.  Not finished: p.
const IdSet kCompleted = {"a", "b"};
const IdSet kFailed = {"x", "y"};

TEST(Dependency, CheckAndUnreachable) {
  struct Case {
    const char* name;
    Dependency dep;
    bool met;
    bool unreachable;
  } cases[] = {
      {"empty", Dep({}, true, true, false), true, false},
      {"empty any", Dep({}, false, true, false), true, false},
      {"empty failure only", Dep({}, true, false, true), true, false},
      // all, success only (the default)
      {"all ok done", Dep({"a", "b"}, true, true, false), true, false},
      {"all ok one pending", Dep({"a", "p"}, true, true, false), false, false},
      {"all ok one failed", Dep({"a", "x"}, true, true, false), false, true},
      {"all ok pending+failed", Dep({"p", "x"}, true, true, false), false, true},
      // any, success only
      {"any ok one done", Dep({"a", "p"}, false, true, false), true, false},
      {"any ok none done", Dep({"p"}, false, true, false), false, false},
      {"any ok some failed", Dep({"x", "p"}, false, true, false), false, false},
      {"any ok all failed", Dep({"x", "y"}, false, true, false), false, true},
      {"any ok failed+done", Dep({"x", "a"}, false, true, false), true, false},
      // all, failure only
      {"all fail failed", Dep({"x", "y"}, true, false, true), true, false},
      {"all fail one ok", Dep({"x", "a"}, true, false, true), false, true},
      {"all fail pending", Dep({"x", "p"}, true, false, true), false, false},
      // any, failure only
      {"any fail one failed", Dep({"a", "x"}, false, false, true), true, false},
      {"any fail all ok", Dep({"a", "b"}, false, false, true), false, true},
      {"any fail ok+pending", Dep({"a", "p"}, false, false, true), false, false},
      // both outcomes count: only unfinished ids keep it waiting, nothing is ever lost
      {"all both finished", Dep({"a", "x"}, true, true, true), true, false},
      {"all both pending", Dep({"a", "p"}, true, true, true), false, false},
      {"any both one finished", Dep({"p", "y"}, false, true, true), true, false},
      {"any both pending", Dep({"p"}, false, true, true), false, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.dep.Check(kCompleted, kFailed), c.met) << c.name;
    EXPECT_EQ(c.dep.Unreachable(kCompleted, kFailed), c.unreachable) << c.name;
  }
}

TEST(ParseDependency, AcceptedShapes) {
  struct Case {
    const char* wire;
    std::vector<std::string> ids;
    bool all, success, failure;
  } cases[] = {
      {"null", {}, true, true, false},
      {"[]", {}, true, true, false},
      {R"(["a","b"])", {"a", "b"}, true, true, false},
      {R"(["a","b","a"])", {"a", "b"}, true, true, false},
      {R"("a")", {"a"}, true, true, false},
      {"{}", {}, true, true, false},
      {R"({"dependencies":["a"]})", {"a"}, true, true, false},
      {R"({"dependencies":["a","b"],"all":false,"success":true,"failure":true})",
       {"a", "b"},
       false,
       true,
       true},
      {R"({"dependencies":["a"],"success":false,"failure":true})", {"a"}, true, false, true},
      {R"({"dependencies":null,"all":null,"success":null,"failure":null})", {}, true, true, false},
      {R"({"dependencies":["a"],"all":false,"extra":1})", {"a"}, false, true, false},
  };
  for (const auto& c : cases) {
    auto dep = ParseDependency(json::parse(c.wire));
    ASSERT_TRUE(dep.ok()) << c.wire << ": " << dep.status().ToString();
    EXPECT_EQ(dep->ids, c.ids) << c.wire;
    EXPECT_EQ(dep->all, c.all) << c.wire;
    EXPECT_EQ(dep->success, c.success) << c.wire;
    EXPECT_EQ(dep->failure, c.failure) << c.wire;
  }
}

TEST(ParseDependency, RejectedShapes) {
  for (const char* wire : {
           "1",
           "true",
           "[1]",
           R"(["a", null])",
           R"([["a"]])",
           R"({"dependencies":"a","all":1})",
           R"({"dependencies":{"a":1}})",
           R"({"dependencies":["a"],"success":false,"failure":false})",
           R"({"success":false})",
           R"({"all":"yes"})",
           R"({"failure":0})",
       }) {
    auto dep = ParseDependency(json::parse(wire));
    ASSERT_FALSE(dep.ok()) << wire;
    EXPECT_EQ(dep.status().code(), StatusCode::kInvalidArgument) << wire;
  }
}

TEST(Dependency, Contains) {
  Dependency d = Dep({"a", "b"}, true, true, false);
  EXPECT_TRUE(d.Contains("a"));
  EXPECT_FALSE(d.Contains("c"));
  EXPECT_FALSE(d.empty());
  EXPECT_TRUE(Dependency{}.empty());
}

}  // namespace
}  // namespace shoal::controller
