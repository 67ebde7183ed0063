// A small leveled logger writing one line per record to stderr.
//
// Levels use Python logging's numbers (DEBUG 10, INFO 20, WARN 30, ERROR 40, CRITICAL 50)
// because launchers pass `--log-level=10` or `--log-level=DEBUG`.
// Thread rule: safe from any thread (each record is written with one write(2)).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace shoal::log {

enum Level : int { kDebug = 10, kInfo = 20, kWarn = 30, kError = 40, kCritical = 50 };

void SetLevel(int level);
int GetLevel();
void SetName(std::string name);  // the process name printed in each line
// Parses "10", "DEBUG", "info", ...; returns -1 when unknown.
int ParseLevel(std::string_view text);
void Write(int level, const std::string& message);

class Line {
 public:
  explicit Line(int level) : level_(level) {}
  ~Line() { Write(level_, stream_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  int level_;
  std::ostringstream stream_;
};

// Turns `Line(...) << a << b` into void so it can sit in a conditional expression; `&` binds
// looser than `<<`. The message is not even formatted when the level is off.
struct Voidify {
  void operator&(const Line&) {}
};

}  // namespace shoal::log

#define SHOAL_LOG(level)                              \
  (::shoal::log::k##level < ::shoal::log::GetLevel()) \
      ? (void)0                                       \
      : ::shoal::log::Voidify() & ::shoal::log::Line(::shoal::log::k##level)
