#include "shoal/engine/exit_reason.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace shoal::engine {
namespace {

// Wait statuses as the kernel encodes them: exit code << 8, or the signal number
// (| 0x80 when a core was dumped).
constexpr int Exited(int code) { return code << 8; }
constexpr int Signaled(int sig) { return sig; }

TEST(DescribeExitTest, Table) {
  struct Case {
    int status;
    bool oom;
    const char* want;
  } cases[] = {
      {Exited(0), false, "exited normally"},
      {Exited(3), false, "exited with code 3"},
      {Exited(255), false, "exited with code 255"},
      {Signaled(SIGSEGV), false, "killed by signal 11 (SIGSEGV)"},
      {Signaled(SIGKILL), false, "killed by signal 9 (SIGKILL)"},
      {Signaled(SIGKILL), true,
       "killed by signal 9 (SIGKILL) by the kernel's out-of-memory killer"},
      {Signaled(SIGABRT) | 0x80, false, "killed by signal 6 (SIGABRT), core dumped"},
  };
  for (const auto& c : cases) EXPECT_EQ(DescribeExit(c.status, c.oom), c.want) << c.status;
}

TEST(ExitCodeForTest, PassesCodesAndSignals) {
  EXPECT_EQ(ExitCodeFor(Exited(0)), 0);
  EXPECT_EQ(ExitCodeFor(Exited(3)), 3);
  EXPECT_EQ(ExitCodeFor(Signaled(SIGKILL)), 137);
  EXPECT_EQ(ExitCodeFor(Signaled(SIGSEGV)), 139);
}

TEST(OomKillCountTest, ParsesMemoryEvents) {
  EXPECT_EQ(ParseOomKillCount("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n"), 2u);
  EXPECT_EQ(ParseOomKillCount("low 0\n"), std::nullopt);
  EXPECT_EQ(ParseOomKillCount(""), std::nullopt);
}

}  // namespace
}  // namespace shoal::engine
