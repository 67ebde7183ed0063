#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "shoal/client/client_core.h"

namespace shoal::client {

Status ZmqStatus(const zmq::error_t& e, const std::string& context) {
  std::string msg = context + ": " + e.what();
  switch (e.num()) {
    case ETERM:
      return Status::Cancelled(msg);
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
      return Status::InvalidArgument(msg);
    default:
      return Status::IOError(msg);
  }
}

SubmitQueue::SubmitQueue() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

SubmitQueue::~SubmitQueue() {
  if (fd_ >= 0) close(fd_);
}

static void Wake(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
}

bool SubmitQueue::Push(Outgoing& item) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    was_empty = items_.empty();
    items_.push_back(std::move(item));
  }
  // Only the push that makes the queue non-empty wakes the consumer: it drains everything.
  if (was_empty) Wake(fd_);
  return true;
}

void SubmitQueue::Drain(std::vector<Outgoing>& out) {
  uint64_t value;
  ssize_t n;
  do {
    n = read(fd_, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  std::lock_guard<std::mutex> lock(mu_);
  if (out.empty()) {
    out.swap(items_);
  } else {
    for (auto& o : items_) out.push_back(std::move(o));
    items_.clear();
  }
}

bool SubmitQueue::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    closed_ = true;
  }
  Wake(fd_);
  return true;
}

bool SubmitQueue::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

}  // namespace shoal::client
