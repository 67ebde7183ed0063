// Test helpers shared by the store tests: temporary database files and task records shaped
// like the ones the controller writes. Test-only.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>

#include "shoal/common/clock.h"
#include "shoal/store/record_store.h"
#include "shoal/wire/iso_date.h"

namespace shoal::store::test_util {

// A unique path under the test temp dir; removes the database and its WAL files on
// destruction.
class TempDbPath {
 public:
  TempDbPath() {
    static int counter = 0;
    path_ = ::testing::TempDir() + "shoal_store_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter++) + ".db";
    Remove();
  }
  ~TempDbPath() { Remove(); }
  TempDbPath(const TempDbPath&) = delete;
  TempDbPath& operator=(const TempDbPath&) = delete;

  const std::string& path() const { return path_; }

 private:
  void Remove() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
      std::remove((path_ + suffix).c_str());
  }
  std::string path_;
};

// 2026-01-01T00:00:00Z plus `seconds`, as the controller formats dates.
inline std::string Date(double seconds) {
  return wire::FormatIsoDate(1'767'225'600LL * kMicrosPerSecond +
                             static_cast<Micros>(seconds * kMicrosPerSecond));
}

// A freshly submitted task record (as the controller builds from a request), with one
// request buffer.
inline Record Submitted(const std::string& msg_id, double submitted_seconds,
                        std::string buffer = "request-bytes") {
  Record r;
  r.fields = {
      {"msg_id", msg_id},
      {"header",
       {{"msg_id", msg_id}, {"msg_type", "apply_request"}, {"date", Date(submitted_seconds)}}},
      {"metadata", {{"targets", Json::array()}, {"after", Json::array()}}},
      {"content", Json::object()},
      {"submitted", Date(submitted_seconds)},
      {"client_uuid", "client-1"},
      {"engine_uuid", nullptr},
      {"queue", "task"},
      {"stdout", ""},
      {"stderr", ""},
  };
  r.buffers.push_back(Blob::Copy(buffer));
  return r;
}

// The update the controller applies when a result arrives.
inline RecordUpdate Completed(double completed_seconds, const std::string& engine = "engine-a",
                              std::string result = "result-bytes") {
  RecordUpdate u;
  u.fields = {
      {"completed", Date(completed_seconds)},
      {"started", Date(completed_seconds - 0.5)},
      {"received", Date(completed_seconds + 0.001)},
      {"engine_uuid", engine},
      {"result_header", {{"msg_type", "apply_reply"}, {"date", Date(completed_seconds)}}},
      {"result_content", {{"status", "ok"}}},
      {"result_metadata", {{"engine", engine}}},
  };
  u.result_buffers = std::vector<Blob>{Blob::Copy(result)};
  return u;
}

inline std::string RandomBytes(size_t n, unsigned seed = 1) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

}  // namespace shoal::store::test_util
