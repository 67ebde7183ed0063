#include "shoal/wire/connection_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace shoal::wire {
namespace {

using nlohmann::json;

json CommonFields(const ConnectionInfo& info) {
  json j = json::object();
  j["ssh"] = info.ssh;
  j["interface"] = info.interface;
  j["registration"] = info.ports.registration;
  j["control"] = info.ports.control;
  j["mux"] = info.ports.mux;
  j["task"] = info.ports.task;
  j["iopub"] = info.ports.iopub;
  j["key"] = info.key;
  j["curve_serverkey"] = info.curve_serverkey ? json(*info.curve_serverkey) : json(nullptr);
  j["location"] = info.location;
  j["pack"] = info.pack;
  j["unpack"] = info.unpack;
  j["signature_scheme"] = info.signature_scheme;
  return j;
}

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::IOError("cannot create directory " + path + ": " + std::strerror(errno));
}

Status MakeDirs(const std::string& path) {
  for (size_t pos = 1; (pos = path.find('/', pos)) != std::string::npos; ++pos)
    SHOAL_RETURN_NOT_OK(MakeDir(path.substr(0, pos)));
  return MakeDir(path);
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string ExpandUser(const std::string& p) {
  if (!p.empty() && p[0] == '~') return Env("HOME") + p.substr(1);
  return p;
}

}  // namespace

json ClientFileJson(const ConnectionInfo& info) {
  json j = CommonFields(info);
  j["task_scheme"] = info.task_scheme;
  j["notification"] = info.ports.notification;
  j["broadcast"] = info.ports.broadcast.empty() ? 0 : info.ports.broadcast.front();
  return j;
}

json EngineFileJson(const ConnectionInfo& info) {
  json j = CommonFields(info);
  j["hb_ping"] = info.ports.hb_ping;
  j["hb_pong"] = info.ports.hb_pong;
  j["broadcast"] = info.ports.broadcast;
  return j;
}

json RegistrationConnectionInfo(const ConnectionInfo& e) {
  json j = json::object();
  j["interface"] = e.interface;
  j["registration"] = e.ports.registration;
  j["control"] = e.ports.control;
  j["mux"] = e.ports.mux;
  j["task"] = e.ports.task;
  j["iopub"] = e.ports.iopub;
  j["hb_ping"] = e.ports.hb_ping;
  j["hb_pong"] = e.ports.hb_pong;
  j["broadcast"] = e.ports.broadcast;
  return j;
}

Result<ConnectionInfo> ParseConnectionInfo(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("connection info is not a JSON object");
  ConnectionInfo info;
  auto str = [&](const char* k, std::string& out, bool required) -> Status {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) {
      return required ? Status::InvalidArgument(std::string("connection info lacks '") + k + "'")
                      : Status::Ok();
    }
    if (!it->is_string())
      return Status::InvalidArgument(std::string("connection info '") + k + "' is not a string");
    out = it->get<std::string>();
    return Status::Ok();
  };
  auto port = [&](const char* k, int& out) -> Status {
    auto it = j.find(k);
    if (it == j.end()) return Status::Ok();
    if (!it->is_number_integer())
      return Status::InvalidArgument(std::string("connection info '") + k + "' is not a port");
    out = it->get<int>();
    return Status::Ok();
  };
  SHOAL_RETURN_NOT_OK(str("interface", info.interface, true));
  SHOAL_RETURN_NOT_OK(str("key", info.key, false));
  SHOAL_RETURN_NOT_OK(str("location", info.location, false));
  SHOAL_RETURN_NOT_OK(str("ssh", info.ssh, false));
  SHOAL_RETURN_NOT_OK(str("signature_scheme", info.signature_scheme, false));
  SHOAL_RETURN_NOT_OK(str("task_scheme", info.task_scheme, false));
  SHOAL_RETURN_NOT_OK(str("pack", info.pack, false));
  SHOAL_RETURN_NOT_OK(str("unpack", info.unpack, false));
  for (const std::string& p : {info.pack, info.unpack})
    if (p != "json" && p != "orjson")
      return Status::InvalidArgument("unsupported packer '" + p + "' (shoal speaks json only)");
  if (auto it = j.find("curve_serverkey"); it != j.end() && it->is_string())
    info.curve_serverkey = it->get<std::string>();
  SHOAL_RETURN_NOT_OK(port("registration", info.ports.registration));
  SHOAL_RETURN_NOT_OK(port("control", info.ports.control));
  SHOAL_RETURN_NOT_OK(port("mux", info.ports.mux));
  SHOAL_RETURN_NOT_OK(port("task", info.ports.task));
  SHOAL_RETURN_NOT_OK(port("iopub", info.ports.iopub));
  SHOAL_RETURN_NOT_OK(port("notification", info.ports.notification));
  SHOAL_RETURN_NOT_OK(port("hb_ping", info.ports.hb_ping));
  SHOAL_RETURN_NOT_OK(port("hb_pong", info.ports.hb_pong));
  if (auto it = j.find("broadcast"); it != j.end()) {
    if (it->is_number_integer()) {
      info.ports.broadcast = {it->get<int>()};
    } else if (it->is_array()) {
      for (const auto& p : *it) {
        if (!p.is_number_integer()) return Status::InvalidArgument("bad broadcast port");
        info.ports.broadcast.push_back(p.get<int>());
      }
    } else {
      return Status::InvalidArgument("connection info 'broadcast' is not a port or a list");
    }
  }
  return info;
}

Result<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(path + " is not valid JSON");
  return j;
}

Result<ConnectionInfo> ReadConnectionFile(const std::string& path) {
  SHOAL_ASSIGN_OR_RETURN(json j, ReadJsonFile(path));
  auto info = ParseConnectionInfo(j);
  if (!info.ok()) return info.status().WithContext(path);
  return info;
}

Status WriteJsonFile(const std::string& path, const json& j) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    // Create with 0600 from the start: the file holds the HMAC key.
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
    std::string text = j.dump(2) + "\n";
    ssize_t n = ::write(fd, text.data(), text.size());
    int err = errno;
    bool ok = n == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(tmp.c_str());
      return Status::IOError("cannot write " + path + ": " + std::strerror(err ? err : EIO));
    }
  }
  ::chmod(tmp.c_str(), 0600);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOError("cannot rename to " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

std::string JoinEndpoint(const std::string& interface, int port) {
  if (interface.rfind("ipc://", 0) == 0) return interface + "-" + std::to_string(port);
  return interface + ":" + std::to_string(port);
}

std::string ProfileDir::client_file() const {
  return security_dir() + "/ipcontroller" + (cluster_id.empty() ? "" : "-" + cluster_id) +
         "-client.json";
}
std::string ProfileDir::engine_file() const {
  return security_dir() + "/ipcontroller" + (cluster_id.empty() ? "" : "-" + cluster_id) +
         "-engine.json";
}
std::string ProfileDir::engines_state_file() const {
  return log_dir() + "/engines" + cluster_id + ".json";
}

ProfileDir ResolveProfileDir(const ProfileArgs& args) {
  ProfileDir dir;
  if (args.cluster_id) {
    dir.cluster_id = *args.cluster_id;
  } else {
    dir.cluster_id = Env("IPP_CLUSTER_ID");
  }
  if (args.profile_dir) {
    dir.path = ExpandUser(*args.profile_dir);
  } else if (!args.profile && !Env("IPP_PROFILE_DIR").empty()) {
    dir.path = ExpandUser(Env("IPP_PROFILE_DIR"));
  } else {
    std::string base = args.ipython_dir ? *args.ipython_dir : Env("IPYTHONDIR");
    if (base.empty()) base = Env("HOME") + "/.ipython";
    dir.path = ExpandUser(base) + "/profile_" + args.profile.value_or("default");
  }
  while (dir.path.size() > 1 && dir.path.back() == '/') dir.path.pop_back();
  return dir;
}

Status EnsureProfileDir(const ProfileDir& dir) {
  SHOAL_RETURN_NOT_OK(MakeDirs(dir.path));
  for (const char* sub : {"/security", "/log", "/startup", "/pid"})
    SHOAL_RETURN_NOT_OK(MakeDir(dir.path + sub));
  return Status::Ok();
}

}  // namespace shoal::wire
