// shoal-controller: IPython Parallel's ipcontroller (hub and every scheduler) in one C++
// process. Parses the command line, starts the controller, stops it on SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "shoal/common/log.h"
#include "shoal/controller/controller.h"
#include "shoal/controller/options.h"

namespace {
void OnSignal(int) { shoal::controller::Controller::RequestStop(); }
}  // namespace

int main(int argc, char** argv) {
  using namespace shoal::controller;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto opts = ParseControllerArgs(args);
  if (!opts.ok()) {
    std::fprintf(stderr, "shoal-controller: %s\n", opts.status().message().c_str());
    return 2;
  }
  if (opts->show_version) {
    std::printf("%s\n", kCompatibleIppVersion);
    return 0;
  }
  if (opts->show_help) {
    std::fputs(ControllerHelp().c_str(), stdout);
    return 0;
  }
  shoal::log::SetName("shoal-controller");
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGABRT, SIGHUP}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Controller controller(std::move(opts).value());
  shoal::Status st = controller.Start();
  if (!st.ok()) {
    SHOAL_LOG(Critical) << "cannot start: " << st.ToString();
    return 1;
  }
  st = controller.Run();
  if (!st.ok()) {
    SHOAL_LOG(Critical) << st.ToString();
    return 1;
  }
  return 0;
}
