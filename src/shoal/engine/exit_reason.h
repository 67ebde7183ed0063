// How an engine process ended, in words a user reads in an EngineError.
// Pure functions of a waitpid() status and the cgroup's OOM-kill counter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shoal::engine {

// "exited with code 3", "killed by signal 11 (SIGSEGV)", "killed by signal 9 (SIGKILL) by
// the kernel's out-of-memory killer" (when `oom_killed`), "exited normally".
std::string DescribeExit(int wait_status, bool oom_killed);

// The exit code a parent should end with to pass `wait_status` on: the child's code, or
// 128 + signal number as shells report it.
int ExitCodeFor(int wait_status);

// The `oom_kill` counter of a cgroup v2 memory.events text; nullopt when absent.
std::optional<uint64_t> ParseOomKillCount(const std::string& memory_events);

// Reads /proc/self/cgroup and that cgroup's memory.events; nullopt when unreadable.
std::optional<uint64_t> ReadOomKillCount();

}  // namespace shoal::engine
