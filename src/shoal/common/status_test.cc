#include "shoal/status.h"

#include <gtest/gtest.h>

namespace shoal {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s.code(), StatusCode::kOk);
}

TEST(Status, CodesAndMessages) {
  struct Case {
    Status st;
    StatusCode code;
    const char* text;
  } cases[] = {
      {Status::InvalidArgument("a"), StatusCode::kInvalidArgument, "InvalidArgument: a"},
      {Status::NotFound("b"), StatusCode::kNotFound, "NotFound: b"},
      {Status::AlreadyExists("c"), StatusCode::kAlreadyExists, "AlreadyExists: c"},
      {Status::TimedOut("d"), StatusCode::kTimedOut, "TimedOut: d"},
      {Status::Cancelled("e"), StatusCode::kCancelled, "Cancelled: e"},
      {Status::Unavailable("f"), StatusCode::kUnavailable, "Unavailable: f"},
      {Status::ProtocolError("g"), StatusCode::kProtocolError, "ProtocolError: g"},
      {Status::IOError("h"), StatusCode::kIOError, "IOError: h"},
      {Status::RemoteError("i"), StatusCode::kRemoteError, "RemoteError: i"},
      {Status::Internal("j"), StatusCode::kInternal, "Internal: j"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(c.st.ok());
    EXPECT_EQ(c.st.code(), c.code);
    EXPECT_EQ(c.st.ToString(), c.text);
  }
}

TEST(Status, WithContextPrefixesMessage) {
  EXPECT_EQ(Status::IOError("disk full").WithContext("writing tasks.db").ToString(),
            "IOError: writing tasks.db: disk full");
  EXPECT_TRUE(Status().WithContext("x").ok());
}

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  SHOAL_ASSIGN_OR_RETURN(int h, Half(x));
  SHOAL_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Result, ValueOrStatus) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(7).value_or(-1), -1);
}

TEST(Result, OkStatusIsNotAValue) {
  Result<int> r{Status()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace shoal
