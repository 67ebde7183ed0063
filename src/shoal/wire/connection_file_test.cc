#include "shoal/wire/connection_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace shoal::wire {
namespace {

ConnectionInfo Sample() {
  ConnectionInfo info;
  info.key = "fc10a910-d2867579865eb7572f23a6f3";
  info.location = "node1";
  info.ports = {.registration = 1,
                .control = 2,
                .mux = 3,
                .task = 4,
                .iopub = 5,
                .notification = 6,
                .hb_ping = 7,
                .hb_pong = 8,
                .broadcast = {9, 10}};
  return info;
}

TEST(ConnectionFile, ClientFileHasEveryField) {
  auto j = ClientFileJson(Sample());
  for (const char* k : {"ssh", "interface", "registration", "control", "mux", "task", "task_scheme",
                        "iopub", "notification", "broadcast", "key", "curve_serverkey", "location",
                        "pack", "unpack", "signature_scheme"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j.size(), 16u);
  EXPECT_EQ(j["broadcast"], 9);
  EXPECT_TRUE(j["curve_serverkey"].is_null());
}

TEST(ConnectionFile, EngineFileHasEveryField) {
  auto j = EngineFileJson(Sample());
  for (const char* k :
       {"ssh", "interface", "registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong",
        "broadcast", "key", "curve_serverkey", "location", "pack", "unpack", "signature_scheme"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["broadcast"], nlohmann::json({9, 10}));
  EXPECT_FALSE(j.contains("notification"));
}

TEST(ConnectionFile, WritesMode0600AndReadsBack) {
  char tmpl[] = "/tmp/shoal_cf_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string path = dir + "/c.json";
  ASSERT_TRUE(WriteJsonFile(path, EngineFileJson(Sample())).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto back = ReadConnectionFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ports.hb_pong, 8);
  EXPECT_EQ(back->ports.broadcast, (std::vector<int>{9, 10}));
  EXPECT_EQ(back->key, Sample().key);
  EXPECT_EQ(WriteJsonFile("/nonexistent/dir/x.json", {}).code(), StatusCode::kIOError);
}

TEST(ConnectionFile, RefusesPickleAndBadFields) {
  auto j = ClientFileJson(Sample());
  j["pack"] = "pickle";
  EXPECT_EQ(ParseConnectionInfo(j).status().code(), StatusCode::kInvalidArgument);
  j = ClientFileJson(Sample());
  j["mux"] = "x";
  EXPECT_EQ(ParseConnectionInfo(j).status().code(), StatusCode::kInvalidArgument);
  j.erase("interface");
  EXPECT_FALSE(ParseConnectionInfo(j).ok());
}

TEST(ConnectionFile, Endpoints) {
  EXPECT_EQ(JoinEndpoint("tcp://127.0.0.1", 5), "tcp://127.0.0.1:5");
  EXPECT_EQ(JoinEndpoint("ipc:///tmp/x", 5), "ipc:///tmp/x-5");
}

TEST(ProfileDir, ResolutionOrder) {
  setenv("IPYTHONDIR", "/tmp/ipy", 1);
  unsetenv("IPP_PROFILE_DIR");
  unsetenv("IPP_CLUSTER_ID");
  EXPECT_EQ(ResolveProfileDir({}).path, "/tmp/ipy/profile_default");
  EXPECT_EQ(ResolveProfileDir({.profile = "iptest"}).path, "/tmp/ipy/profile_iptest");
  EXPECT_EQ(ResolveProfileDir({.profile_dir = "/p/"}).path, "/p");
  setenv("IPP_PROFILE_DIR", "/env/prof", 1);
  setenv("IPP_CLUSTER_ID", "abc", 1);
  ProfileDir d = ResolveProfileDir({});
  EXPECT_EQ(d.path, "/env/prof");
  EXPECT_EQ(d.client_file(), "/env/prof/security/ipcontroller-abc-client.json");
  EXPECT_EQ(d.engines_state_file(), "/env/prof/log/enginesabc.json");
  EXPECT_EQ(ResolveProfileDir({.cluster_id = ""}).engine_file(),
            "/env/prof/security/ipcontroller-engine.json");
  unsetenv("IPP_PROFILE_DIR");
  unsetenv("IPP_CLUSTER_ID");
}

}  // namespace
}  // namespace shoal::wire
