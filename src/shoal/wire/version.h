// The IPython Parallel release whose protocol and command lines shoal's daemons speak.
// `--version` prints it because launchers and tests compare it with ipyparallel.__version__.
#pragma once

namespace shoal::wire {
inline constexpr const char* kCompatibleIppVersion = "7.1.0";
}  // namespace shoal::wire
