// EngineOptions: everything `shoal-engine` can be told, and the parser for the `ipengine`
// command line that launchers and IPython Parallel's tests pass.
//
// Accepted: --profile, --profile-dir, --ipython-dir, --cluster-id, --file (connection file),
// --url (registration url), --location, --timeout (registration reply wait, s), --log-level,
// -c / --IPEngine.startup_command, -s / --IPEngine.startup_script, --mpi, --id,
// --IPEngine.max_heartbeat_misses, --IPEngine.enable_nanny, --IPEngine.wait_for_url_file,
// --Session.key / --Session.signature_scheme / --ident / --user, --InteractiveShell.<trait>
// (also ZMQInteractiveShell.<trait>), --python, --version, --help / --help-all.
// Environment: IPYTHONDIR, IPP_PROFILE_DIR, IPP_CLUSTER_ID, IPP_CONNECTION_INFO (the engine
// connection file's JSON), IPP_SESSION_KEY, IPP_CURVE_SECRETKEY / IPP_CURVE_PUBLICKEY, and
// the launcher's rank as the requested id: OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK,
// SLURM_PROCID (only when --mpi is given or the engine was started by mpiexec/srun, i.e.
// the variable is set together with its world-size companion).
// Pure: the parser reads the arguments and the environment passed in, nothing else.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shoal/common/cli_args.h"
#include "shoal/status.h"
#include "shoal/wire/connection_file.h"

namespace shoal::engine {

struct EngineOptions {
  wire::ProfileArgs profile;
  int log_level = 20;
  std::string url_file;               // --file: the engine connection file
  std::string registration_url;       // --url: overrides the file's registration address
  std::string connection_info_json;   // $IPP_CONNECTION_INFO
  std::string location;               // --location: the controller's host
  double timeout_s = 5.0;             // IPEngine.timeout: wait for the registration reply
  double wait_for_url_file_s = 10.0;  // IPEngine.wait_for_url_file
  int max_heartbeat_misses = 50;      // IPEngine.max_heartbeat_misses (0 = never give up)
  bool enable_nanny = true;           // IPEngine.enable_nanny: the watchdog parent
  std::optional<int> requested_id;    // --id, or the launcher's rank
  std::string startup_command, startup_script;
  std::optional<std::string> session_key;  // overrides the file's key
  std::string signature_scheme;            // "" = the file's
  std::string ident;                       // Session.session: the engine uuid ("" = new)
  std::string username = "username";
  std::string curve_secretkey, curve_publickey;     // Z85; generated when empty
  std::map<std::string, std::string> shell_config;  // InteractiveShell trait -> raw value
  std::string python;  // interpreter whose environment the engine adopts ("" = default)
  bool show_version = false;
  bool show_help = false;
  std::vector<std::string> warnings;  // ignored options, reported at start-up
};

// Parses argv[1..]. kInvalidArgument with a message naming the argument for malformed
// values; unknown `--Class.trait=value` assignments are accepted with a warning.
Result<EngineOptions> ParseEngineArgs(const std::vector<std::string>& args,
                                      const cli::EnvLookup& env = cli::GetEnv);

// The --help text.
std::string EngineHelp();

}  // namespace shoal::engine
