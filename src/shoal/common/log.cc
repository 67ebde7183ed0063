#include "shoal/common/log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace shoal::log {
namespace {
std::atomic<int> g_level{kInfo};
std::mutex g_name_mu;
std::string g_name = "shoal";
}  // namespace

void SetLevel(int level) { g_level = level; }
int GetLevel() { return g_level; }
void SetName(std::string name) {
  std::lock_guard<std::mutex> lock(g_name_mu);
  g_name = std::move(name);
}

int ParseLevel(std::string_view t) {
  if (!t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos)
    return std::stoi(std::string(t));
  std::string u;
  for (char c : t) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u == "DEBUG") return kDebug;
  if (u == "INFO") return kInfo;
  if (u == "WARN" || u == "WARNING") return kWarn;
  if (u == "ERROR") return kError;
  if (u == "CRITICAL" || u == "FATAL") return kCritical;
  return -1;
}

void Write(int level, const std::string& message) {
  const char* tag = level >= kCritical ? "C"
                    : level >= kError  ? "E"
                    : level >= kWarn   ? "W"
                    : level >= kInfo   ? "I"
                                       : "D";
  auto now = std::chrono::system_clock::now();
  time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  std::string name;
  {
    std::lock_guard<std::mutex> lock(g_name_mu);
    name = g_name;
  }
  std::string line = std::string("[") + name + " " + stamp + " " + tag + "] " + message + "\n";
  ssize_t rc = ::write(2, line.data(), line.size());
  (void)rc;
}

}  // namespace shoal::log
