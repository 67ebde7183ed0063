// Blob: an immutable, shared, reference-counted byte buffer.
//
// Records keep request and result buffers as Blobs so that the controller can store a
// zmq frame without copying it (the owner keeps the zmq_msg_t alive through the deleter).
// Thread rule: a Blob is immutable; copies may be read from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace shoal::store {

class Blob {
 public:
  Blob() = default;
  // Takes ownership of `owner`, which keeps [data, data+size) alive.
  Blob(std::shared_ptr<const void> owner, const char* data, size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}
  // Copies `bytes` into a new buffer.
  static Blob Copy(std::string_view bytes) {
    auto s = std::make_shared<const std::string>(bytes);
    return Blob(s, s->data(), s->size());
  }

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_, size_}; }

 private:
  std::shared_ptr<const void> owner_;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace shoal::store
