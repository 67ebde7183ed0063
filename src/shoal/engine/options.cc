#include "shoal/engine/options.h"

#include <functional>

#include "shoal/common/log.h"
#include "shoal/wire/app_args.h"

namespace shoal::engine {
namespace {

using cli::ToBool;
using cli::ToDouble;
using cli::ToInt;
using cli::Unquote;

const std::map<std::string, std::string>& Aliases() {
  static const std::map<std::string, std::string> m = {
      {"file", "IPEngine.url_file"},
      {"c", "IPEngine.startup_command"},
      {"s", "IPEngine.startup_script"},
      {"url", "IPEngine.registration_url"},
      {"ssh", "IPEngine.sshserver"},
      {"sshkey", "IPEngine.sshkey"},
      {"location", "IPEngine.location"},
      {"timeout", "IPEngine.timeout"},
      {"id", "IPEngine.id"},
      {"python", "IPEngine.python"},
      {"config", "BaseIPythonApplication.extra_config_file"},
  };
  return m;
}

Status ApplyTrait(EngineOptions& o, const std::string& trait, const std::string& raw) {
  std::string v = Unquote(raw);
  auto set_string = [&](std::string& dst) {
    dst = v;
    return Status::Ok();
  };
  auto set_double = [&](double& dst) -> Status {
    SHOAL_ASSIGN_OR_RETURN(dst, ToDouble(trait, v));
    return Status::Ok();
  };
  auto set_bool = [&](bool& dst) -> Status {
    SHOAL_ASSIGN_OR_RETURN(dst, ToBool(trait, v));
    return Status::Ok();
  };
  if (trait == "IPEngine.url_file") return set_string(o.url_file);
  if (trait == "IPEngine.registration_url") return set_string(o.registration_url);
  if (trait == "IPEngine.location") return set_string(o.location);
  if (trait == "IPEngine.startup_command") return set_string(o.startup_command);
  if (trait == "IPEngine.startup_script") return set_string(o.startup_script);
  if (trait == "IPEngine.python") return set_string(o.python);
  if (trait == "IPEngine.timeout") return set_double(o.timeout_s);
  if (trait == "IPEngine.wait_for_url_file") return set_double(o.wait_for_url_file_s);
  if (trait == "IPEngine.enable_nanny") return set_bool(o.enable_nanny);
  if (trait == "IPEngine.max_heartbeat_misses") {
    int n;
    SHOAL_ASSIGN_OR_RETURN(n, ToInt(trait, v));
    if (n < 0) return Status::InvalidArgument("--" + trait + ": must be >= 0");
    o.max_heartbeat_misses = n;
    return Status::Ok();
  }
  if (trait == "IPEngine.id") {
    if (v == "None" || v.empty()) {
      o.requested_id.reset();
      return Status::Ok();
    }
    int id;
    SHOAL_ASSIGN_OR_RETURN(id, ToInt(trait, v));
    if (id < 0) return Status::InvalidArgument("--" + trait + ": must be >= 0");
    o.requested_id = id;
    return Status::Ok();
  }
  if (trait == "Session.key") return (o.session_key = v, Status::Ok());
  if (trait == "Session.signature_scheme") return set_string(o.signature_scheme);
  if (trait == "Session.session") return set_string(o.ident);
  if (trait == "Session.username") return set_string(o.username);
  if (auto st = wire::ApplyBaseAppTrait(trait, v, o.profile, o.log_level)) return *st;
  for (const char* shell :
       {"InteractiveShell.", "ZMQInteractiveShell.", "TerminalInteractiveShell."}) {
    std::string prefix(shell);
    if (trait.rfind(prefix, 0) == 0) {
      o.shell_config[trait.substr(prefix.size())] = raw;
      return Status::Ok();
    }
  }
  o.warnings.push_back("ignoring option --" + trait + "=" + raw);
  return Status::Ok();
}

// The rank a parallel launcher gave this process, as the id to ask the controller for.
std::optional<int> LauncherRank(const cli::EnvLookup& env) {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (auto v = env(var)) {
      auto rank = ToInt(var, *v);
      if (rank.ok() && *rank >= 0) return *rank;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<EngineOptions> ParseEngineArgs(const std::vector<std::string>& args,
                                      const cli::EnvLookup& env) {
  EngineOptions o;
  if (auto k = env("IPP_SESSION_KEY")) o.session_key = *k;
  if (auto s = env("IPP_CURVE_SECRETKEY")) o.curve_secretkey = *s;
  if (auto p = env("IPP_CURVE_PUBLICKEY")) o.curve_publickey = *p;
  if (auto c = env("IPP_CONNECTION_INFO")) o.connection_info_json = *c;
  if (auto p = env("SHOAL_ENGINE_PYTHON")) o.python = *p;
  o.requested_id = LauncherRank(env);

  static const std::map<std::string, std::function<void(EngineOptions&)>> kFlags = {
      {"mpi", [](auto&) {}},  // the rank variables are always honoured
      {"debug", [](auto& o) { o.log_level = log::kDebug; }},
      {"quiet", [](auto& o) { o.log_level = log::kCritical; }},
      {"log-to-file", [](auto&) {}},
      {"secure", [](auto&) {}},
      {"no-secure", [](auto& o) { o.session_key = ""; }},
      {"version", [](auto& o) { o.show_version = true; }},
      {"help", [](auto& o) { o.show_help = true; }},
      {"help-all", [](auto& o) { o.show_help = true; }},
      {"h", [](auto& o) { o.show_help = true; }},
  };

  std::vector<cli::Arg> split = cli::SplitArgs(args);
  for (size_t i = 0; i < split.size(); ++i) {
    const cli::Arg& arg = split[i];
    if (arg.positional) {
      o.warnings.push_back("ignoring extra argument '" + arg.text + "'");
      continue;
    }
    std::string value = arg.value;
    if (!arg.has_value) {
      if (auto f = kFlags.find(arg.name); f != kFlags.end()) {
        f->second(o);
        continue;
      }
    }
    std::string trait;
    if (auto al = Aliases().find(arg.name); al != Aliases().end()) {
      trait = al->second;
    } else if (auto base = wire::BaseAppAliases().find(arg.name);
               base != wire::BaseAppAliases().end()) {
      trait = base->second;
    } else if (arg.name.find('.') != std::string::npos) {
      trait = arg.name;
    } else {
      return Status::InvalidArgument("unrecognized argument '" + arg.text + "' (see --help)");
    }
    if (!arg.has_value) {
      if (i + 1 >= split.size()) return Status::InvalidArgument(arg.text + " needs a value");
      value = split[++i].text;
    }
    SHOAL_RETURN_NOT_OK(ApplyTrait(o, trait, value));
  }
  if (o.timeout_s <= 0) return Status::InvalidArgument("--timeout must be positive");
  return o;
}

std::string EngineHelp() {
  return R"(shoal-engine: a shoal engine (C++ host of an embedded CPython with IPython).
It speaks IPython Parallel's protocol: stock ipyparallel clients and controllers work with it.

Finding the controller:
  --profile=NAME          profile name (default: default)
  --profile-dir=PATH      profile directory (or $IPP_PROFILE_DIR)
  --ipython-dir=PATH      IPython directory (or $IPYTHONDIR, default ~/.ipython)
  --cluster-id=ID         cluster id in connection file names (or $IPP_CLUSTER_ID)
  --file=PATH             the engine connection file (default:
                          <profile>/security/ipcontroller[-<cluster-id>]-engine.json;
                          $IPP_CONNECTION_INFO may hold its JSON instead)
  --url=URL               registration address, overriding the file's
  --location=HOST         the controller's host, when the file's interface is 0.0.0.0
  --timeout=SECONDS       how long to wait for the registration reply (default 5)
  --IPEngine.wait_for_url_file=SECONDS   wait for the connection file (default 10)
Identity:
  --id=N                  ask for engine id N (default: the MPI/Slurm rank, if any)
  --ident=UUID            the engine's uuid (default: a new one)
  --Session.key=KEY       HMAC key (default: the file's; or $IPP_SESSION_KEY)
Python:
  -c CODE / --IPEngine.startup_command=CODE   run CODE in the user namespace at start-up
  -s FILE / --IPEngine.startup_script=FILE    run FILE at start-up
  --InteractiveShell.<trait>=VALUE            configure the engine's IPython shell
  --python=PATH           the interpreter whose environment (venv, sys.path) the engine
                          adopts (default: $SHOAL_ENGINE_PYTHON, $VIRTUAL_ENV/bin/python,
                          else the Python shoal was built with)
Liveness:
  --IPEngine.max_heartbeat_misses=N   give up after N missed pings (default 50; 0 = never)
  --IPEngine.enable_nanny=False       no watchdog parent (crashes are then noticed only by
                                      missed heartbeats)
Other:
  --log-level=LEVEL       10/DEBUG ... 50/CRITICAL (default 20)
  --version               print the IPython Parallel version whose protocol this speaks
  --help, --help-all      this text
)";
}

}  // namespace shoal::engine
