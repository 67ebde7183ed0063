#include "shoal/wire/ids.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <atomic>
#include <random>

#include "shoal/wire/signer.h"

namespace shoal::wire {

std::string NewSessionId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  std::string hex = HexEncode(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
  return hex.substr(0, 8) + "-" + hex.substr(8);
}

std::string NewMsgId(std::string_view session) {
  static std::atomic<uint64_t> counter{0};
  std::string id(session);
  id += '_';
  id += std::to_string(getpid());
  id += '_';
  id += std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  return id;
}

bool IsSafeMsgId(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace shoal::wire
