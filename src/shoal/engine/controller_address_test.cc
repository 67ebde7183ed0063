#include "shoal/engine/controller_address.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace shoal::engine {
namespace {

TEST(ConnectableInterfaceTest, Table) {
  struct Case {
    const char *iface, *location, *want;
  } cases[] = {
      {"tcp://127.0.0.1", "", "tcp://127.0.0.1"},
      {"tcp://0.0.0.0", "", "tcp://127.0.0.1"},
      {"tcp://*", "thishost", "tcp://127.0.0.1"},
      {"tcp://0.0.0.0", "otherhost", "tcp://otherhost"},
      {"tcp://0.0.0.0", "localhost", "tcp://127.0.0.1"},
      {"ipc:///tmp/sock", "otherhost", "ipc:///tmp/sock"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(ConnectableInterface(c.iface, c.location, "thishost"), c.want) << c.iface;
}

TEST(LocateControllerTest, ReadsTheEngineFileAndAppliesOverrides) {
  std::string dir = testing::TempDir() + "/shoal_locate_" + std::to_string(getpid());
  std::filesystem::create_directories(dir + "/security");
  wire::ConnectionInfo info;
  info.interface = "tcp://0.0.0.0";
  info.key = "secret";
  info.ports = {.registration = 5000,
                .control = 5001,
                .mux = 5002,
                .task = 5003,
                .iopub = 5004,
                .hb_ping = 5005,
                .hb_pong = 5006,
                .broadcast = {5007}};
  ASSERT_TRUE(
      wire::WriteJsonFile(dir + "/security/ipcontroller-c1-engine.json", wire::EngineFileJson(info))
          .ok());
  EngineOptions o;
  o.profile.profile_dir = dir;
  o.profile.cluster_id = "c1";
  auto where = LocateController(o);
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  EXPECT_EQ(where->registration_url, "tcp://127.0.0.1:5000");
  EXPECT_EQ(where->info.key, "secret");

  o.session_key = "other";
  o.registration_url = "tcp://127.0.0.1:6000";
  where = LocateController(o);
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(where->registration_url, "tcp://127.0.0.1:6000");
  EXPECT_EQ(where->info.key, "other");
  std::filesystem::remove_all(dir);
}

TEST(LocateControllerTest, MissingFileTimesOut) {
  EngineOptions o;
  o.url_file = "/nonexistent/engine.json";
  o.wait_for_url_file_s = 0.1;
  auto where = LocateController(o);
  ASSERT_FALSE(where.ok());
  EXPECT_EQ(where.status().code(), StatusCode::kNotFound);
}

TEST(LocateControllerTest, ConnectionInfoFromTheEnvironment) {
  EngineOptions o;
  o.connection_info_json = "not json";
  EXPECT_EQ(LocateController(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::engine
