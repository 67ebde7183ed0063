// Connection files and profile directories, as IPython Parallel lays them out.
//
// The controller writes two files into <profile>/security/ once every socket is bound:
// ipcontroller[-<cluster_id>]-client.json and ipcontroller[-<cluster_id>]-engine.json, mode
// 0600, pretty JSON. Clients and engines read them (or $IPP_CONNECTION_INFO for engines).
// Thread rule: plain functions and values.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shoal/status.h"

namespace shoal::wire {

// The ports of one side of the controller (client side or engine side).
struct ChannelPorts {
  int registration = 0;
  int control = 0;
  int mux = 0;
  int task = 0;
  int iopub = 0;
  int notification = 0;          // client side only
  int hb_ping = 0, hb_pong = 0;  // engine side only
  std::vector<int> broadcast;    // client: one port; engine: one per leaf scheduler
};

struct ConnectionInfo {
  std::string interface = "tcp://127.0.0.1";  // transport://ip
  std::string location;                       // controller host name
  std::string key;                            // HMAC key ("" = no signing)
  std::string signature_scheme = "hmac-sha256";
  std::string ssh;
  std::string task_scheme = "leastload";       // client file only
  std::optional<std::string> curve_serverkey;  // Z85 public key, or null
  std::string pack = "json", unpack = "json";
  ChannelPorts ports;
};

// The client file's JSON (every field IPython Parallel writes).
nlohmann::json ClientFileJson(const ConnectionInfo& info);
// The engine file's JSON.
nlohmann::json EngineFileJson(const ConnectionInfo& info);
// The connection_info dict of a registration_reply (interface, ports, broadcast list).
nlohmann::json RegistrationConnectionInfo(const ConnectionInfo& engine_side);

// Parses a client or engine file. kInvalidArgument for missing or mistyped fields, or a
// packer other than json/orjson.
Result<ConnectionInfo> ParseConnectionInfo(const nlohmann::json& j);
Result<ConnectionInfo> ReadConnectionFile(const std::string& path);

// Writes `j` to `path` (pretty, indent 2) with mode 0600, atomically (temp file + rename).
Status WriteJsonFile(const std::string& path, const nlohmann::json& j);
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// "tcp://127.0.0.1" + 5555 -> "tcp://127.0.0.1:5555" ("ipc://path" + 3 -> "ipc://path-3").
std::string JoinEndpoint(const std::string& interface, int port);

// Where a profile lives and what files it holds.
struct ProfileDir {
  std::string path;        // <ipython_dir>/profile_<name>, or the explicit --profile-dir
  std::string cluster_id;  // "" when none

  std::string security_dir() const { return path + "/security"; }
  std::string log_dir() const { return path + "/log"; }
  std::string client_file() const;         // security/ipcontroller[-id]-client.json
  std::string engine_file() const;         // security/ipcontroller[-id]-engine.json
  std::string engines_state_file() const;  // log/engines<id>.json
  std::string sqlite_file() const { return path + "/tasks.db"; }
};

struct ProfileArgs {
  std::optional<std::string> profile;      // --profile (default "default")
  std::optional<std::string> profile_dir;  // --profile-dir
  std::optional<std::string> ipython_dir;  // --ipython-dir
  std::optional<std::string> cluster_id;   // --cluster-id
};

// Resolves flags, then $IPP_PROFILE_DIR, $IPP_CLUSTER_ID, $IPYTHONDIR, then ~/.ipython.
ProfileDir ResolveProfileDir(const ProfileArgs& args);

// Creates the profile directory and its security/, log/, startup/, pid/ subdirectories.
// kIOError when a directory cannot be made.
Status EnsureProfileDir(const ProfileDir& dir);

}  // namespace shoal::wire
