// shoal-engine: a shoal engine, replacing IPython Parallel's `ipengine`.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "shoal/common/log.h"
#include "shoal/engine/engine.h"
#include "shoal/engine/options.h"
#include "shoal/engine/watchdog.h"
#include "shoal/wire/version.h"

int main(int argc, char** argv) {
  using namespace shoal;
  log::SetName("shoal-engine");
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = engine::ParseEngineArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "shoal-engine: %s\n", options.status().message().c_str());
    return 2;
  }
  if (options->show_help) {
    std::fputs(engine::EngineHelp().c_str(), stdout);
    return 0;
  }
  if (options->show_version) {
    std::printf("%s\n", wire::kCompatibleIppVersion);
    return 0;
  }
  log::SetLevel(options->log_level);
  for (const auto& w : options->warnings) SHOAL_LOG(Warn) << w;

  engine::WatchdogPipe pipe;
  if (options->enable_nanny) {
    // Only the engine child returns from here; the watchdog parent exits on its own.
    auto started = engine::StartWatchdog();
    if (started.ok()) {
      pipe = *started;
    } else {
      SHOAL_LOG(Warn) << "running without a watchdog: " << started.status().message();
    }
  }
  int code;
  {
    engine::Engine engine(std::move(*options), pipe);
    code = engine.Run();
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // No Py_Finalize and no static destructors: user threads could block either forever.
  _exit(code);
}
