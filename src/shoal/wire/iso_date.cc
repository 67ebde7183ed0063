#include "shoal/wire/iso_date.h"

#include <cstdio>
#include <ctime>

namespace shoal::wire {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = pos; i < pos + n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

int Num(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Parsed {
  int year, month, day, hour, minute, second;
  int micros = 0;
  bool has_offset = false;
  int offset_seconds = 0;
};

bool Match(std::string_view s, Parsed& p) {
  if (!Digits(s, 0, 4) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2) || s[7] != '-' ||
      !Digits(s, 8, 2) || s[10] != 'T' || !Digits(s, 11, 2) || s[13] != ':' || !Digits(s, 14, 2) ||
      s[16] != ':' || !Digits(s, 17, 2))
    return false;
  p.year = Num(s, 0, 4);
  p.month = Num(s, 5, 2);
  p.day = Num(s, 8, 2);
  p.hour = Num(s, 11, 2);
  p.minute = Num(s, 14, 2);
  p.second = Num(s, 17, 2);
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    size_t n = i - start;
    if (n < 1 || n > 6) return false;
    p.micros = Num(s, start, n);
    for (size_t k = n; k < 6; ++k) p.micros *= 10;
  }
  if (i == s.size()) return true;
  if (s[i] == 'Z') {
    p.has_offset = true;
    return i + 1 == s.size();
  }
  if (s[i] != '+' && s[i] != '-') return false;
  int sign = s[i] == '-' ? -1 : 1;
  if (!Digits(s, i + 1, 2)) return false;
  int hh = Num(s, i + 1, 2);
  size_t j = i + 3;
  if (j < s.size() && s[j] == ':') ++j;
  if (!Digits(s, j, 2) || j + 2 != s.size()) return false;
  int mm = Num(s, j, 2);
  p.has_offset = true;
  p.offset_seconds = sign * (hh * 3600 + mm * 60);
  return true;
}

}  // namespace

std::string FormatIsoDate(Micros wall_micros) {
  int64_t secs = wall_micros / kMicrosPerSecond;
  int64_t frac = wall_micros % kMicrosPerSecond;
  if (frac < 0) {
    frac += kMicrosPerSecond;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[96];
  if (frac == 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(frac));
  }
  return buf;
}

bool LooksLikeIsoDate(std::string_view text) {
  Parsed p;
  return Match(text, p);
}

Result<Micros> ParseIsoDate(std::string_view text) {
  Parsed p;
  if (!Match(text, p))
    return Status::InvalidArgument("not an ISO date: '" + std::string(text) + "'");
  if (p.month < 1 || p.month > 12 || p.day < 1 || p.day > 31 || p.hour > 23 || p.minute > 59 ||
      p.second > 60)
    return Status::InvalidArgument("date field out of range: '" + std::string(text) + "'");
  int64_t secs =
      DaysFromCivil(p.year, p.month, p.day) * 86400 + p.hour * 3600 + p.minute * 60 + p.second;
  if (p.has_offset) {
    secs -= p.offset_seconds;
  } else {
    // Naive dates are local time, as Python's dateutil reads them.
    struct tm tm = {};
    tm.tm_year = p.year - 1900;
    tm.tm_mon = p.month - 1;
    tm.tm_mday = p.day;
    tm.tm_hour = p.hour;
    tm.tm_min = p.minute;
    tm.tm_sec = p.second;
    tm.tm_isdst = -1;
    time_t local = mktime(&tm);
    if (local == static_cast<time_t>(-1)) return Status::InvalidArgument("bad local date");
    secs = local;
  }
  return secs * kMicrosPerSecond + p.micros;
}

}  // namespace shoal::wire
