#include "shoal/controller/options.h"

#include <cstdlib>
#include <map>

#include "shoal/common/cli_args.h"
#include "shoal/common/log.h"
#include "shoal/wire/app_args.h"

namespace shoal::controller {
namespace {

using cli::ToBool;
using cli::ToDouble;
using cli::ToInt;
using cli::Unquote;

Result<DbBackend> ToDb(const std::string& v) {
  std::string c = Unquote(v);
  auto ends = [&](const char* s) {
    std::string t(s);
    return c.size() >= t.size() && c.compare(c.size() - t.size(), t.size(), t) == 0;
  };
  if (ends("DictDB")) return DbBackend::kMemory;
  if (ends("SQLiteDB")) return DbBackend::kSqlite;
  if (ends("NoDB")) return DbBackend::kNone;
  return Status::InvalidArgument("unsupported db_class '" + c +
                                 "' (shoal has DictDB, SQLiteDB and NoDB)");
}

// Canonical trait name for each alias.
const std::map<std::string, std::string>& Aliases() {
  static const std::map<std::string, std::string> m = {
      {"ssh", "IPController.ssh_server"},
      {"enginessh", "IPController.engine_ssh_server"},
      {"location", "IPController.location"},
      {"ip", "IPController.ip"},
      {"transport", "IPController.transport"},
      {"port", "IPController.regport"},
      {"ports", "IPController.ports"},
      {"ping", "HeartMonitor.period"},
      {"scheme", "TaskScheduler.scheme_name"},
      {"hwm", "TaskScheduler.hwm"},
      {"url", "IPController.url"},
  };
  return m;
}

// Applies one trait assignment. Unknown traits are warnings, not errors, because launchers
// pass options meant for IPython Parallel's Python internals.
Status ApplyTrait(ControllerOptions& o, const std::string& trait, const std::string& raw) {
  std::string v = Unquote(raw);
  auto set_int = [&](int& dst) -> Status {
    SHOAL_ASSIGN_OR_RETURN(dst, ToInt(trait, v));
    return Status::Ok();
  };
  auto set_ports = [&](std::vector<int>& dst) -> Status {
    std::string t = v;
    if (!t.empty() && t.front() == '[') t = t.substr(1, t.size() - 2);
    std::string cleaned;
    for (char c : t)
      if (c != ' ') cleaned += c;
    if (cleaned.empty()) return Status::Ok();
    auto ports = ParsePortList(cleaned);
    if (!ports.ok()) return ports.status().WithContext("--" + trait);
    dst.insert(dst.end(), ports->begin(), ports->end());
    return Status::Ok();
  };
  if (trait == "HeartMonitor.period") return set_int(o.ping_ms);
  if (trait == "HeartMonitor.max_heartmonitor_misses") return set_int(o.max_heartmonitor_misses);
  if (trait == "IPController.registration_timeout") {
    int t;
    SHOAL_ASSIGN_OR_RETURN(t, ToInt(trait, v));
    o.registration_timeout_s = t;
    return Status::Ok();
  }
  if (trait == "TaskScheduler.scheme_name") {
    o.scheme = v;
    return Status::Ok();
  }
  if (trait == "TaskScheduler.hwm") return set_int(o.hwm);
  if (trait == "TaskScheduler.history_limit") return set_int(o.task_history_limit);
  if (trait == "IPController.ports") return set_ports(o.ports);
  if (trait == "IPController.engine_ports") return set_ports(o.engine_ports);
  if (trait == "IPController.client_ports") return set_ports(o.client_ports);
  if (trait == "IPController.regport") return set_int(o.regport);
  if (trait == "IPController.ip") return (o.ip = v, Status::Ok());
  if (trait == "IPController.engine_ip") return (o.engine_ip = v, Status::Ok());
  if (trait == "IPController.client_ip") return (o.client_ip = v, Status::Ok());
  if (trait == "IPController.transport") return (o.transport = v, Status::Ok());
  if (trait == "IPController.location") return (o.location = v, Status::Ok());
  if (trait == "IPController.ssh_server") return (o.ssh = v, Status::Ok());
  if (trait == "IPController.engine_ssh_server") return (o.engine_ssh = v, Status::Ok());
  if (trait == "IPController.reuse_files") {
    SHOAL_ASSIGN_OR_RETURN(o.reuse_files, ToBool(trait, v));
    return Status::Ok();
  }
  if (trait == "IPController.restore_engines") {
    SHOAL_ASSIGN_OR_RETURN(o.restore_engines, ToBool(trait, v));
    return Status::Ok();
  }
  if (trait == "IPController.enable_curve") {
    SHOAL_ASSIGN_OR_RETURN(o.enable_curve, ToBool(trait, v));
    return Status::Ok();
  }
  if (trait == "IPController.broadcast_scheduler_depth") {
    SHOAL_RETURN_NOT_OK(set_int(o.broadcast_depth));
    if (o.broadcast_depth < 0 || o.broadcast_depth > 8)
      return Status::InvalidArgument("--" + trait + ": depth must be between 0 and 8");
    return Status::Ok();
  }
  if (trait == "IPController.db_class") {
    SHOAL_ASSIGN_OR_RETURN(o.db, ToDb(v));
    return Status::Ok();
  }
  if (trait == "IPController.max_message_bytes") {
    double b;
    SHOAL_ASSIGN_OR_RETURN(b, ToDouble(trait, v));
    o.max_message_bytes = static_cast<uint64_t>(b);
    return Status::Ok();
  }
  if (trait == "DictDB.record_limit") {
    int n;
    SHOAL_ASSIGN_OR_RETURN(n, ToInt(trait, v));
    o.record_limit = static_cast<size_t>(std::max(n, 1));
    return Status::Ok();
  }
  if (trait == "DictDB.size_limit") {
    double b;
    SHOAL_ASSIGN_OR_RETURN(b, ToDouble(trait, v));
    o.size_limit = static_cast<uint64_t>(b);
    return Status::Ok();
  }
  if (trait == "DictDB.cull_fraction") {
    SHOAL_ASSIGN_OR_RETURN(o.cull_fraction, ToDouble(trait, v));
    return Status::Ok();
  }
  if (trait == "SQLiteDB.location") return (o.sqlite_location = v, Status::Ok());
  if (trait == "SQLiteDB.filename") return (o.sqlite_filename = v, Status::Ok());
  if (trait == "SQLiteDB.table") return (o.sqlite_table = v, Status::Ok());
  if (trait == "Session.key") return (o.session_key = v, Status::Ok());
  if (trait == "Session.signature_scheme") return (o.signature_scheme = v, Status::Ok());
  if (auto st = wire::ApplyBaseAppTrait(trait, v, o.profile, o.log_level)) return *st;
  o.warnings.push_back("ignoring option --" + trait + "=" + raw);
  return Status::Ok();
}

}  // namespace

Result<std::vector<int>> ParsePortList(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string part =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t dash = part.find('-');
    auto first = ToInt("ports", part.substr(0, dash));
    if (!first.ok()) return first.status();
    if (dash == std::string::npos) {
      out.push_back(*first);
    } else {
      auto last = ToInt("ports", part.substr(dash + 1));
      if (!last.ok()) return last.status();
      if (*last < *first || *last - *first > 65535)
        return Status::InvalidArgument("bad port range '" + part + "'");
      for (int p = *first; p <= *last; ++p) out.push_back(p);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  for (int p : out)
    if (p < 1 || p > 65535)
      return Status::InvalidArgument("port out of range: " + std::to_string(p));
  return out;
}

Result<ControllerOptions> ParseControllerArgs(const std::vector<std::string>& args,
                                              const EnvLookup& env) {
  ControllerOptions o;
  if (auto k = env("IPP_SESSION_KEY")) o.session_key = *k;
  if (auto c = env("IPP_ENABLE_CURVE"); c && (*c == "1" || *c == "true" || *c == "True"))
    o.enable_curve = true;
  if (auto s = env("IPP_CURVE_SECRETKEY")) o.curve_secretkey = *s;
  if (auto p = env("IPP_CURVE_PUBLICKEY")) o.curve_publickey = *p;

  static const std::map<std::string, std::function<void(ControllerOptions&)>> kFlags = {
      {"reuse", [](auto& o) { o.reuse_files = true; }},
      {"restore", [](auto& o) { o.restore_engines = o.reuse_files = true; }},
      {"dictdb", [](auto& o) { o.db = DbBackend::kMemory; }},
      {"sqlitedb", [](auto& o) { o.db = DbBackend::kSqlite; }},
      {"nodb", [](auto& o) { o.db = DbBackend::kNone; }},
      {"secure", [](auto& o) {}},
      {"no-secure", [](auto& o) { o.session_key = ""; }},
      {"debug", [](auto& o) { o.log_level = log::kDebug; }},
      {"quiet", [](auto& o) { o.log_level = log::kCritical; }},
      {"usethreads", [](auto& o) {}},
      {"curve", [](auto& o) { o.enable_curve = true; }},
      {"version", [](auto& o) { o.show_version = true; }},
      {"help", [](auto& o) { o.show_help = true; }},
      {"help-all", [](auto& o) { o.show_help = true; }},
      {"h", [](auto& o) { o.show_help = true; }},
  };

  std::vector<cli::Arg> split = cli::SplitArgs(args);
  for (size_t i = 0; i < split.size(); ++i) {
    const cli::Arg& arg = split[i];
    const std::string& a = arg.text;
    if (arg.positional || (a.rfind("--", 0) != 0 && a != "-h")) {
      o.warnings.push_back("ignoring extra argument '" + a + "'");
      continue;
    }
    const std::string& name = arg.name;
    std::string value = arg.value;
    bool has_value = arg.has_value;
    if (name == "mongodb") return Status::InvalidArgument("--mongodb: MongoDB is not supported");
    if (!has_value) {
      if (auto f = kFlags.find(name); f != kFlags.end()) {
        f->second(o);
        continue;
      }
    }
    std::string trait;
    if (auto al = Aliases().find(name); al != Aliases().end()) {
      trait = al->second;
    } else if (auto base = wire::BaseAppAliases().find(name);
               base != wire::BaseAppAliases().end()) {
      trait = base->second;
    } else if (name.find('.') != std::string::npos) {
      trait = name;
    } else {
      return Status::InvalidArgument("unrecognized argument '" + a + "' (see --help)");
    }
    if (!has_value) {
      if (i + 1 >= split.size()) return Status::InvalidArgument("--" + name + " needs a value");
      value = split[++i].text;
    }
    SHOAL_RETURN_NOT_OK(ApplyTrait(o, trait, value));
  }
  if (o.ping_ms <= 0) return Status::InvalidArgument("--ping must be a positive number of ms");
  if (o.hwm < 0) return Status::InvalidArgument("--hwm must be >= 0");
  if (o.task_history_limit < 1)
    return Status::InvalidArgument("--TaskScheduler.history_limit must be >= 1");
  return o;
}

std::string ControllerHelp() {
  return R"(shoal-controller: the shoal controller (hub, schedulers, relays) in one C++ process.
It speaks IPython Parallel's protocol: stock ipyparallel clients and engines work with it.

Profile and cluster:
  --profile=NAME          profile name (default: default)
  --profile-dir=PATH      profile directory (or $IPP_PROFILE_DIR)
  --ipython-dir=PATH      IPython directory (or $IPYTHONDIR, default ~/.ipython)
  --cluster-id=ID         cluster id in connection file names (or $IPP_CLUSTER_ID)
Network:
  --ip=ADDR               bind address for every socket (default 127.0.0.1)
  --IPController.engine_ip=ADDR / --IPController.client_ip=ADDR
  --transport=tcp|ipc     transport (default tcp)
  --location=HOST         host name written into the connection files
  --port=N                registration port
  --ports=LIST            pool of ports, e.g. 10101-10120,10130
  --IPController.engine_ports=LIST / --IPController.client_ports=LIST
  --reuse                 reuse (and keep) existing connection files
  --restore               restore the engine table from log/engines<id>.json (implies --reuse)
Scheduling:
  --scheme=NAME           leastload (default), lru, plainrandom, twobin, weighted, pure
  --hwm=N                 max outstanding tasks per engine (default 1; 0 = unlimited)
  --TaskScheduler.history_limit=N
                          finished tasks that after/follow can name (default 131072)
  --ping=MS               heartbeat period in ms (default 3000)
  --HeartMonitor.max_heartmonitor_misses=N   misses before an engine is dead (default 10)
  --IPController.broadcast_scheduler_depth=N broadcast leaves = 2**N (default 1)
Records:
  --dictdb                in-memory records (default), bounded by
                          --DictDB.record_limit=N (1024) and --DictDB.size_limit=BYTES (1 GiB)
  --sqlitedb              SQLite records in <profile>/tasks.db (--SQLiteDB.location/filename/table)
  --nodb                  keep no records
Security:
  --Session.key=KEY       HMAC key (or $IPP_SESSION_KEY; default: random)
  --Session.signature_scheme=hmac-sha256
  --no-secure             no message signing
  --curve                 CurveZMQ on every socket (or IPP_ENABLE_CURVE=1,
                          --IPController.enable_curve=True; keys from IPP_CURVE_SECRETKEY /
                          IPP_CURVE_PUBLICKEY or generated)
  --IPController.max_message_bytes=N   refuse larger messages (default: no limit)
Other:
  --log-level=LEVEL       10/DEBUG, 20/INFO (default), 30/WARN, 40/ERROR
  --debug, --quiet        log levels 10 / 50
  --version               print the IPython Parallel version whose protocol this speaks
  --help, --help-all      this text
Other --Class.trait=value options of ipcontroller are accepted and ignored with a warning.
)";
}

}  // namespace shoal::controller
