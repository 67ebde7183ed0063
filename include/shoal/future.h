// Future<T> / Promise<T>: a value that one thread produces and any threads wait for.
//
// The client's I/O thread completes promises; callers wait on futures with a timeout, poll
// ready(), or register callbacks. There is deliberately no wait without a deadline: every
// wait returns by its timeout. A promise that is destroyed unset completes its future with
// kCancelled, so no future is ever left pending by a vanished producer.
//
// Thread rule: Future and Promise are cheap handles to one shared state; every method may be
// called from any thread. Callbacks run exactly once, either on the thread that sets the
// value (while no lock is held) or, when the value is already set, at once on the thread
// that registers them. A callback must not block for long: on the client it runs on the
// I/O thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "shoal/status.h"

namespace shoal {

template <typename T>
class Promise;

template <typename T>
class Future {
 public:
  using Callback = std::function<void(const Result<T>&)>;

  Future() = default;  // invalid: valid() is false, ready() false, Get() kInvalidArgument

  bool valid() const { return s_ != nullptr; }

  // True once a value or an error has been set. Never blocks.
  bool ready() const {
    if (!s_) return false;
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->result.has_value();
  }

  // Blocks up to `timeout` for the result; returns ready().
  bool Wait(std::chrono::microseconds timeout) const {
    if (!s_) return false;
    std::unique_lock<std::mutex> lock(s_->mu);
    return s_->cv.wait_for(lock, timeout, [&] { return s_->result.has_value(); });
  }

  // The result, waiting up to `timeout`. kTimedOut when it is not ready by then (the future
  // stays valid and may be waited on again).
  Result<T> Get(std::chrono::microseconds timeout) const {
    if (!s_) return Status::InvalidArgument("Get() on an invalid Future");
    std::unique_lock<std::mutex> lock(s_->mu);
    if (!s_->cv.wait_for(lock, timeout, [&] { return s_->result.has_value(); }))
      return Status::TimedOut("no result within " + std::to_string(timeout.count() / 1000) + " ms");
    return *s_->result;
  }

  // Runs `cb` with the result once it is set (now, on this thread, if it already is).
  void OnReady(Callback cb) const {
    if (!s_) return;
    std::unique_lock<std::mutex> lock(s_->mu);
    if (!s_->result) {
      s_->callbacks.push_back(std::move(cb));
      return;
    }
    lock.unlock();
    cb(*s_->result);  // immutable once set
  }

 private:
  friend class Promise<T>;
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<T>> result;
    std::vector<Callback> callbacks;
  };
  explicit Future(std::shared_ptr<State> s) : s_(std::move(s)) {}
  std::shared_ptr<State> s_;
};

template <typename T>
class Promise {
 public:
  Promise() : s_(std::make_shared<typename Future<T>::State>()) {}
  ~Promise() {
    if (s_) Set(Status::Cancelled("the producer went away"));
  }
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      if (s_) Set(Status::Cancelled("the producer went away"));
      s_ = std::move(other.s_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;

  Future<T> future() const { return Future<T>(s_); }

  // Sets the result; the first call wins. Returns false when it was already set.
  bool Set(Result<T> r) {
    if (!s_) return false;
    std::vector<typename Future<T>::Callback> callbacks;
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      if (s_->result) return false;
      s_->result.emplace(std::move(r));
      callbacks.swap(s_->callbacks);
    }
    s_->cv.notify_all();
    for (auto& cb : callbacks) cb(*s_->result);
    return true;
  }

  bool is_set() const {
    if (!s_) return true;
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->result.has_value();
  }

 private:
  std::shared_ptr<typename Future<T>::State> s_;
};

}  // namespace shoal
