#include "shoal/engine/options.h"

#include <gtest/gtest.h>

#include <map>

namespace shoal::engine {
namespace {

cli::EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(EngineOptionsTest, WhatLaunchersPass) {
  auto o = ParseEngineArgs(
      {"--profile-dir=/tmp/p", "--cluster-id=abc", "--log-level=10", "--timeout", "7.5",
       "--InteractiveShell.colors=NoColor", "--IPEngine.max_heartbeat_misses=4", "-c", "a = 1"},
      FakeEnv({}));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->profile.profile_dir, "/tmp/p");
  EXPECT_EQ(o->profile.cluster_id, "abc");
  EXPECT_EQ(o->log_level, 10);
  EXPECT_DOUBLE_EQ(o->timeout_s, 7.5);
  EXPECT_EQ(o->shell_config.at("colors"), "NoColor");
  EXPECT_EQ(o->max_heartbeat_misses, 4);
  EXPECT_EQ(o->startup_command, "a = 1");
  EXPECT_FALSE(o->requested_id.has_value());
}

TEST(EngineOptionsTest, RankFromTheLauncherIsTheRequestedId) {
  struct Case {
    std::map<std::string, std::string> env;
    std::optional<int> want;
  } cases[] = {
      {{{"OMPI_COMM_WORLD_RANK", "3"}}, 3},
      {{{"PMI_RANK", "5"}}, 5},
      {{{"SLURM_PROCID", "2"}}, 2},
      {{{"SLURM_PROCID", "x"}}, std::nullopt},
      {{}, std::nullopt},
  };
  for (const auto& c : cases) {
    auto o = ParseEngineArgs({}, FakeEnv(c.env));
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->requested_id, c.want);
  }
  auto explicit_id = ParseEngineArgs({"--id=9"}, FakeEnv({{"PMI_RANK", "5"}}));
  ASSERT_TRUE(explicit_id.ok());
  EXPECT_EQ(explicit_id->requested_id, 9);
}

TEST(EngineOptionsTest, EnvironmentAndFlags) {
  auto o = ParseEngineArgs({"--file=/x/engine.json", "--url=tcp://10.0.0.1:5", "--version"},
                           FakeEnv({{"IPP_SESSION_KEY", "k"}, {"IPP_CONNECTION_INFO", "{}"}}));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->session_key, "k");
  EXPECT_EQ(o->connection_info_json, "{}");
  EXPECT_EQ(o->url_file, "/x/engine.json");
  EXPECT_EQ(o->registration_url, "tcp://10.0.0.1:5");
  EXPECT_TRUE(o->show_version);
}

TEST(EngineOptionsTest, BadInputNamesTheArgument) {
  struct Case {
    std::vector<std::string> args;
    const char* mentions;
  } cases[] = {
      {{"--timeout=soon"}, "--IPEngine.timeout"},
      {{"--bogus"}, "--bogus"},
      {{"--id=-1"}, "IPEngine.id"},
      {{"--timeout"}, "--timeout"},
      {{"--Session.packer=pickle"}, "json"},
  };
  for (const auto& c : cases) {
    auto o = ParseEngineArgs(c.args, FakeEnv({}));
    ASSERT_FALSE(o.ok()) << c.args[0];
    EXPECT_NE(o.status().message().find(c.mentions), std::string::npos) << o.status().message();
  }
  auto unknown_trait = ParseEngineArgs({"--Kernel.foo=1"}, FakeEnv({}));
  ASSERT_TRUE(unknown_trait.ok());
  EXPECT_EQ(unknown_trait->warnings.size(), 1u);
}

}  // namespace
}  // namespace shoal::engine
