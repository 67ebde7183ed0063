#include "shoal/engine/exit_reason.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

namespace shoal::engine {

std::string DescribeExit(int wait_status, bool oom_killed) {
  if (WIFEXITED(wait_status)) {
    int code = WEXITSTATUS(wait_status);
    if (code == 0) return "exited normally";
    return "exited with code " + std::to_string(code);
  }
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* abbrev = sigabbrev_np(sig);
    std::string text = "killed by signal " + std::to_string(sig);
    if (abbrev) text += std::string(" (SIG") + abbrev + ")";
    if (oom_killed) text += " by the kernel's out-of-memory killer";
    if (WCOREDUMP(wait_status)) text += ", core dumped";
    return text;
  }
  return "ended with wait status " + std::to_string(wait_status);
}

int ExitCodeFor(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

std::optional<uint64_t> ParseOomKillCount(const std::string& memory_events) {
  std::istringstream in(memory_events);
  std::string key;
  uint64_t value;
  while (in >> key >> value)
    if (key == "oom_kill") return value;
  return std::nullopt;
}

std::optional<uint64_t> ReadOomKillCount() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return std::nullopt;
  std::ifstream events("/sys/fs/cgroup" + path + "/memory.events");
  if (!events) return std::nullopt;
  std::stringstream text;
  text << events.rdbuf();
  return ParseOomKillCount(text.str());
}

}  // namespace shoal::engine
