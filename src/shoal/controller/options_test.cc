#include "shoal/controller/options.h"

#include <gtest/gtest.h>

#include <map>

namespace shoal::controller {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Result<ControllerOptions> Parse(std::vector<std::string> args,
                                std::map<std::string, std::string> env = {}) {
  return ParseControllerArgs(args, FakeEnv(std::move(env)));
}

TEST(ControllerOptions, TestHarnessCommandLine) {
  // What IPython Parallel's test suite passes.
  auto o = Parse({"--profile=iptest", "--log-level=10", "--ping=250", "--dictdb"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->profile.profile, "iptest");
  EXPECT_EQ(o->log_level, 10);
  EXPECT_EQ(o->ping_ms, 250);
  EXPECT_EQ(o->db, DbBackend::kMemory);
  EXPECT_EQ(o->RegistrationTimeoutSeconds(), 30);
}

TEST(ControllerOptions, AliasesFlagsAndTraits) {
  struct Case {
    std::vector<std::string> args;
    std::function<void(const ControllerOptions&)> check;
  } cases[] = {
      {{"--sqlitedb"}, [](auto& o) { EXPECT_EQ(o.db, DbBackend::kSqlite); }},
      {{"--nodb"}, [](auto& o) { EXPECT_EQ(o.db, DbBackend::kNone); }},
      {{"--IPController.db_class=ipyparallel.controller.sqlitedb.SQLiteDB"},
       [](auto& o) { EXPECT_EQ(o.db, DbBackend::kSqlite); }},
      {{"--IPController.db_class='NoDB'"}, [](auto& o) { EXPECT_EQ(o.db, DbBackend::kNone); }},
      {{"--scheme", "lru", "--hwm=0"},
       [](auto& o) {
         EXPECT_EQ(o.scheme, "lru");
         EXPECT_EQ(o.hwm, 0);
       }},
      {{"--TaskScheduler.history_limit=10"}, [](auto& o) { EXPECT_EQ(o.task_history_limit, 10); }},
      {{"--TaskScheduler.scheme_name=twobin", "--TaskScheduler.hwm=4"},
       [](auto& o) {
         EXPECT_EQ(o.scheme, "twobin");
         EXPECT_EQ(o.hwm, 4);
       }},
      {{"--HeartMonitor.period=200"}, [](auto& o) { EXPECT_EQ(o.ping_ms, 200); }},
      {{"--ports=10101-10103,10110"},
       [](auto& o) {
         EXPECT_EQ(o.ports, (std::vector<int>{10101, 10102, 10103, 10110}));
       }},
      {{"--IPController.ports=[10101, 10102]"},
       [](auto& o) {
         EXPECT_EQ(o.ports, (std::vector<int>{10101, 10102}));
       }},
      {{"--reuse"}, [](auto& o) { EXPECT_TRUE(o.reuse_files); }},
      {{"--restore"},
       [](auto& o) {
         EXPECT_TRUE(o.restore_engines);
         EXPECT_TRUE(o.reuse_files);
       }},
      {{"--no-secure"}, [](auto& o) { EXPECT_EQ(o.session_key, ""); }},
      {{"--Session.key=abc"}, [](auto& o) { EXPECT_EQ(o.session_key, "abc"); }},
      {{"--IPController.enable_curve=True"}, [](auto& o) { EXPECT_TRUE(o.enable_curve); }},
      {{"--ip=0.0.0.0", "--location=node7"},
       [](auto& o) {
         EXPECT_EQ(o.ip, "0.0.0.0");
         EXPECT_EQ(o.location, "node7");
       }},
      {{"--profile-dir=/tmp/p", "--cluster-id=abc"},
       [](auto& o) {
         EXPECT_EQ(o.profile.profile_dir, "/tmp/p");
         EXPECT_EQ(o.profile.cluster_id, "abc");
       }},
      {{"--log-level=DEBUG"}, [](auto& o) { EXPECT_EQ(o.log_level, 10); }},
      {{"--DictDB.record_limit=5", "--DictDB.size_limit=1e6"},
       [](auto& o) {
         EXPECT_EQ(o.record_limit, 5u);
         EXPECT_EQ(o.size_limit, 1000000u);
       }},
      {{"--version"}, [](auto& o) { EXPECT_TRUE(o.show_version); }},
      {{"--help-all"}, [](auto& o) { EXPECT_TRUE(o.show_help); }},
      {{"--IPController.use_threads=True"}, [](auto& o) { EXPECT_EQ(o.warnings.size(), 1u); }},
      {{"--ping=2000"}, [](auto& o) { EXPECT_EQ(o.RegistrationTimeoutSeconds(), 30); }},
      {{"--ping=5000"}, [](auto& o) { EXPECT_EQ(o.RegistrationTimeoutSeconds(), 50); }},
  };
  for (auto& c : cases) {
    auto o = Parse(c.args);
    ASSERT_TRUE(o.ok()) << c.args[0] << ": " << o.status().ToString();
    c.check(*o);
  }
}

TEST(ControllerOptions, Environment) {
  auto o = Parse({}, {{"IPP_SESSION_KEY", "k"}, {"IPP_ENABLE_CURVE", "1"}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->session_key, "k");
  EXPECT_TRUE(o->enable_curve);
  // the command line wins over the environment
  EXPECT_EQ(Parse({"--Session.key=x"}, {{"IPP_SESSION_KEY", "k"}})->session_key, "x");
}

TEST(ControllerOptions, BadInputIsAClearError) {
  struct Case {
    std::vector<std::string> args;
    const char* fragment;
  } cases[] = {
      {{"--ping=fast"}, "expected an integer"},
      {{"--ping=0"}, "--ping must be a positive"},
      {{"--hwm"}, "needs a value"},
      {{"--bogus"}, "unrecognized argument"},
      {{"--mongodb"}, "MongoDB is not supported"},
      {{"--ports=5-1"}, "bad port range"},
      {{"--ports=70000"}, "port out of range"},
      {{"--log-level=LOUD"}, "unknown level"},
      {{"--IPController.db_class=Redis"}, "unsupported db_class"},
      {{"--Session.packer=pickle"}, "json packer only"},
  };
  for (auto& c : cases) {
    auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.args[0];
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find(c.fragment), std::string::npos)
        << c.args[0] << " -> " << o.status().message();
  }
}

}  // namespace
}  // namespace shoal::controller
