#include "shoal/engine/controller_address.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "shoal/common/log.h"

namespace shoal::engine {

std::string ConnectableInterface(const std::string& interface, const std::string& location,
                                 const std::string& this_host) {
  auto sep = interface.find("://");
  if (sep == std::string::npos) return interface;
  std::string transport = interface.substr(0, sep), host = interface.substr(sep + 3);
  if (transport != "tcp" || (host != "0.0.0.0" && host != "*" && host != "")) return interface;
  if (location.empty() || location == this_host || location == "localhost")
    return transport + "://127.0.0.1";
  return transport + "://" + location;
}

Result<ControllerAddress> LocateController(const EngineOptions& o) {
  ControllerAddress out;
  nlohmann::json j;
  if (!o.url_file.empty() || o.connection_info_json.empty()) {
    std::string path = o.url_file;
    if (path.empty()) path = wire::ResolveProfileDir(o.profile).engine_file();
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int>(o.wait_for_url_file_s * 1000));
    bool announced = false;
    while (!std::filesystem::exists(path)) {
      if (std::chrono::steady_clock::now() >= deadline)
        return Status::NotFound("no engine connection file at " + path);
      if (!announced) SHOAL_LOG(Info) << "waiting for the connection file " << path;
      announced = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // A file being written appears before its content is complete: retry briefly.
    Result<nlohmann::json> read = wire::ReadJsonFile(path);
    for (int i = 0; i < 20 && !read.ok(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      read = wire::ReadJsonFile(path);
    }
    if (!read.ok()) return read.status();
    j = *read;
    out.source = path;
  } else {
    j = nlohmann::json::parse(o.connection_info_json, nullptr, false);
    if (!j.is_object()) return Status::InvalidArgument("$IPP_CONNECTION_INFO is not a JSON object");
    out.source = "$IPP_CONNECTION_INFO";
  }
  auto info = wire::ParseConnectionInfo(j);
  if (!info.ok()) return info.status().WithContext(out.source);
  out.info = *info;
  if (o.session_key) out.info.key = *o.session_key;
  if (!o.signature_scheme.empty()) out.info.signature_scheme = o.signature_scheme;
  std::string location = o.location.empty() ? out.info.location : o.location;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  out.info.interface = ConnectableInterface(out.info.interface, location, host);
  out.registration_url = o.registration_url.empty()
                             ? wire::JoinEndpoint(out.info.interface, out.info.ports.registration)
                             : o.registration_url;
  return out;
}

}  // namespace shoal::engine
