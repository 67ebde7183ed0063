#include "shoal/wire/app_args.h"

#include "shoal/common/log.h"

namespace shoal::wire {

const std::map<std::string, std::string>& BaseAppAliases() {
  static const std::map<std::string, std::string> m = {
      {"profile", "BaseIPythonApplication.profile"},
      {"profile-dir", "ProfileDir.location"},
      {"ipython-dir", "BaseIPythonApplication.ipython_dir"},
      {"cluster-id", "BaseParallelApplication.cluster_id"},
      {"log-level", "Application.log_level"},
      {"work-dir", "BaseParallelApplication.work_dir"},
      {"log-to-file", "BaseParallelApplication.log_to_file"},
      {"clean-logs", "BaseParallelApplication.clean_logs"},
      {"log-url", "BaseParallelApplication.log_url"},
      {"ident", "Session.session"},
      {"user", "Session.username"},
      {"keyfile", "Session.keyfile"},
  };
  return m;
}

std::optional<Status> ApplyBaseAppTrait(const std::string& trait, const std::string& v,
                                        ProfileArgs& profile, int& log_level) {
  if (trait == "Session.packer" || trait == "Session.unpacker") {
    if (v != "json" && v != "orjson")
      return Status::InvalidArgument("--" + trait + ": shoal speaks the json packer only");
    return Status::Ok();
  }
  if (trait == "BaseIPythonApplication.profile") return (profile.profile = v, Status::Ok());
  if (trait == "ProfileDir.location") return (profile.profile_dir = v, Status::Ok());
  if (trait == "BaseIPythonApplication.ipython_dir") return (profile.ipython_dir = v, Status::Ok());
  if (trait == "BaseParallelApplication.cluster_id") return (profile.cluster_id = v, Status::Ok());
  if (trait == "Application.log_level") {
    int level = log::ParseLevel(v);
    if (level < 0) return Status::InvalidArgument("--log-level: unknown level '" + v + "'");
    log_level = level;
    return Status::Ok();
  }
  return std::nullopt;
}

}  // namespace shoal::wire
