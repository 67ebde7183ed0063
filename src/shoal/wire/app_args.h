// The command-line options every IPython Parallel application accepts (profile, cluster,
// log level, Session packer), shared by the `ipcontroller` and `ipengine` parsers.
// Pure: plain functions over the values passed in.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "shoal/status.h"
#include "shoal/wire/connection_file.h"

namespace shoal::wire {

// Alias -> trait for the options of IPython Parallel's base application
// (--profile, --profile-dir, --ipython-dir, --cluster-id, --log-level, --ident, ...).
const std::map<std::string, std::string>& BaseAppAliases();

// Applies `trait` = `value` (already unquoted) when it is a base-application trait:
// nullopt when it is not one (the caller handles it), else the result (kInvalidArgument for
// an unknown log level or a packer other than json/orjson).
std::optional<Status> ApplyBaseAppTrait(const std::string& trait, const std::string& value,
                                        ProfileArgs& profile, int& log_level);

}  // namespace shoal::wire
