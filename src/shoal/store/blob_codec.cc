#include "shoal/store/blob_codec.h"

#include <cstdint>
#include <memory>

namespace shoal::store {
namespace {

constexpr std::string_view kMagic = "SHB1";

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

Status Corrupt(std::string_view why) {
  return Status::IOError("stored buffer list is corrupt or not in shoal's format: " +
                         std::string(why));
}

}  // namespace

std::string EncodeBlobs(const std::vector<Blob>& buffers) {
  size_t total = kMagic.size() + 4;
  for (const Blob& b : buffers) total += 8 + b.size();
  std::string out;
  out.reserve(total);
  out += kMagic;
  PutLe(out, buffers.size(), 4);
  for (const Blob& b : buffers) {
    PutLe(out, b.size(), 8);
    out.append(b.data(), b.size());
  }
  return out;
}

Result<std::vector<Blob>> DecodeBlobs(std::string_view bytes) {
  if (bytes.substr(0, kMagic.size()) != kMagic) return Corrupt("bad magic");
  if (bytes.size() < kMagic.size() + 4) return Corrupt("truncated count");
  auto owner = std::make_shared<const std::string>(bytes);
  const char* p = owner->data();
  size_t pos = kMagic.size();
  const uint64_t count = GetLe(p + pos, 4);
  pos += 4;
  std::vector<Blob> out;
  for (uint64_t i = 0; i < count; ++i) {
    if (owner->size() - pos < 8) return Corrupt("truncated length");
    const uint64_t len = GetLe(p + pos, 8);
    pos += 8;
    if (owner->size() - pos < len) return Corrupt("truncated buffer");
    out.emplace_back(owner, p + pos, static_cast<size_t>(len));
    pos += len;
  }
  if (pos != owner->size()) return Corrupt("trailing bytes");
  return out;
}

}  // namespace shoal::store
