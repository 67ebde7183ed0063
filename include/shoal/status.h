// Status and Result<T>: how every shoal API reports success and failure.
//
// A Status is either OK (no allocation) or an error code from a small closed set plus a
// human-readable message. Result<T> holds either a T or a non-OK Status. Neither throws.
// Third-party errors (zmq, SQLite, JSON, Python) are converted into a Status at the first
// wrapper that sees them; no exception crosses a shoal API.
//
// Thread rule: Status and Result are values; copies may be used from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shoal {

// The closed set of error codes. Never add a code named after a subsystem.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a caller or a peer's request content
  kNotFound,         // unknown msg_id, engine, file
  kAlreadyExists,    // duplicate id, uuid already registered
  kTimedOut,         // a deadline passed
  kCancelled,        // aborted, or shut down while waiting
  kUnavailable,      // no engines, peer gone
  kProtocolError,    // malformed frame, bad signature, replay, unknown msg_type
  kIOError,          // filesystem or SQLite
  kRemoteError,      // user code raised on an engine
  kInternal,         // a bug in shoal
};

// Returns the code's name without the k prefix, e.g. "NotFound".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status TimedOut(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ProtocolError(std::string m) { return {StatusCode::kProtocolError, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status RemoteError(std::string m) { return {StatusCode::kRemoteError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // The message without the code; empty when OK.
  const std::string& message() const;
  // "NotFound: no such message 'x'" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;  // null when OK
};

// Result<T>: a T, or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  // Precondition: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace shoal

#define SHOAL_CONCAT_INNER_(a, b) a##b
#define SHOAL_CONCAT_(a, b) SHOAL_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define SHOAL_RETURN_NOT_OK(expr)          \
  do {                                     \
    ::shoal::Status _shoal_st = (expr);    \
    if (!_shoal_st.ok()) return _shoal_st; \
  } while (0)

// `lhs = value of expr` (a Result<T>), or returns its Status from the enclosing function.
#define SHOAL_ASSIGN_OR_RETURN(lhs, expr)                 \
  auto SHOAL_CONCAT_(_shoal_res_, __LINE__) = (expr);     \
  if (!SHOAL_CONCAT_(_shoal_res_, __LINE__).ok())         \
    return SHOAL_CONCAT_(_shoal_res_, __LINE__).status(); \
  lhs = std::move(SHOAL_CONCAT_(_shoal_res_, __LINE__)).value()
