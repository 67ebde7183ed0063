// ControllerOptions: everything `shoal-controller` can be told, and the parser for the
// `ipcontroller` command line that launchers and IPython Parallel's tests pass.
//
// Accepted forms: aliases (`--ping=250`, `--ping 250`), flags (`--reuse`, `--nodb`), and
// traitlets assignments (`--HeartMonitor.period=250`, `--IPController.ports=10101-10120`).
// Environment: IPYTHONDIR, IPP_PROFILE_DIR, IPP_CLUSTER_ID, IPP_SESSION_KEY,
// IPP_ENABLE_CURVE, IPP_CURVE_SECRETKEY, IPP_CURVE_PUBLICKEY.
// Pure: the parser reads the arguments and the environment passed in, nothing else.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shoal/common/cli_args.h"
#include "shoal/status.h"
#include "shoal/wire/connection_file.h"
#include "shoal/wire/version.h"

namespace shoal::controller {

using wire::kCompatibleIppVersion;

enum class DbBackend { kMemory, kSqlite, kNone };

struct ControllerOptions {
  wire::ProfileArgs profile;
  int log_level = 20;
  int ping_ms = 3000;                         // HeartMonitor.period
  int max_heartmonitor_misses = 10;           // HeartMonitor.max_heartmonitor_misses
  std::optional<int> registration_timeout_s;  // default max(30, period_ms/100) s
  DbBackend db = DbBackend::kMemory;
  std::string sqlite_location;  // SQLiteDB.location (default: profile dir)
  std::string sqlite_filename = "tasks.db";
  std::string sqlite_table = "ipython-tasks";
  size_t record_limit = 1024;        // DictDB.record_limit
  uint64_t size_limit = 1ull << 30;  // DictDB.size_limit (bytes)
  double cull_fraction = 0.1;
  std::string transport = "tcp";
  std::string ip = "127.0.0.1";  // both sides unless engine_ip / client_ip are set
  std::string engine_ip, client_ip;
  std::string location;  // default: this host's name
  std::string ssh, engine_ssh;
  std::string scheme = "leastload";  // TaskScheduler.scheme_name
  int hwm = 1;                       // TaskScheduler.hwm
  int task_history_limit = 1 << 17;  // TaskScheduler.history_limit (shoal's)
  int regport = 0;
  std::vector<int> ports, engine_ports, client_ports;
  bool reuse_files = false;
  bool restore_engines = false;
  std::optional<std::string> session_key;  // Session.key / IPP_SESSION_KEY / --no-secure ("")
  std::string signature_scheme = "hmac-sha256";
  bool enable_curve = false;
  std::string curve_secretkey, curve_publickey;  // Z85; generated when empty
  int broadcast_depth = 1;
  uint64_t max_message_bytes = 0;  // 0 = no limit
  bool show_version = false;
  bool show_help = false;
  std::vector<std::string> warnings;  // ignored options, reported by the app at start-up

  int RegistrationTimeoutSeconds() const {
    return registration_timeout_s.value_or(std::max(30, ping_ms / 100));
  }
};

using cli::EnvLookup;
using cli::GetEnv;

// Parses argv[1..] (without the program name). kInvalidArgument with a message naming the
// argument for malformed values; unknown traitlets assignments are accepted with a warning.
Result<ControllerOptions> ParseControllerArgs(const std::vector<std::string>& args,
                                              const EnvLookup& env = GetEnv);

// The --help / --help-all text.
std::string ControllerHelp();

// "1,3-5" -> {1,3,4,5}. kInvalidArgument for anything else.
Result<std::vector<int>> ParsePortList(const std::string& text);

}  // namespace shoal::controller
