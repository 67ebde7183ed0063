// The value types of include/shoal/client.h: Reply, Outputs, Submitted.
#include "shoal/client.h"
#include "shoal/wire/json_get.h"
#include "shoal/wire/message.h"

namespace shoal {

Reply::Reply(std::string msg_id, Frames frames, size_t header_index, std::string engine_uuid)
    : msg_id_(std::move(msg_id)),
      frames_(std::move(frames)),
      header_index_(header_index),
      engine_uuid_(std::move(engine_uuid)) {}

std::shared_ptr<Reply> Reply::Make(std::string msg_id, const Json& header, const Json& parent,
                                   const Json& metadata, const Json& content,
                                   std::string engine_uuid) {
  Frames frames;
  for (const Json* part : {&header, &parent, &metadata, &content}) {
    std::string text = wire::Dump(*part);
    frames.emplace_back(text.data(), text.size());
  }
  auto r = std::make_shared<Reply>(std::move(msg_id), std::move(frames), 0, std::move(engine_uuid));
  r->synthesized_ = true;
  return r;
}

std::string_view Reply::Part(size_t i) const { return wire::View(frames_[header_index_ + i]); }

const Json& Reply::Parsed(size_t i) const {
  std::call_once(parsed_once_[i], [&] {
    if (!wire::ParseJsonObject(Part(i), "reply part", parsed_[i]).ok()) parsed_[i] = Json::object();
  });
  return parsed_[i];
}

const Json& Reply::header() const { return Parsed(0); }
const Json& Reply::metadata() const { return Parsed(2); }
const Json& Reply::content() const { return Parsed(3); }
std::string Reply::msg_type() const { return wire::GetString(header(), "msg_type"); }
std::string Reply::status() const { return wire::GetString(content(), "status"); }

Status Reply::error() const {
  const std::string s = status();
  if (s == "ok") return Status::Ok();
  if (s == "aborted") return Status::Cancelled("aborted: " + msg_id_);
  std::string ename = wire::GetString(content(), "ename", "UnknownError");
  return Status::RemoteError(ename + ": " + wire::GetString(content(), "evalue"));
}

std::string Outputs::stdout_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stdout_;
}
std::string Outputs::stderr_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stderr_;
}
std::string Outputs::execute_input() const {
  std::lock_guard<std::mutex> lock(mu_);
  return execute_input_;
}
Json Outputs::execute_result() const {
  std::lock_guard<std::mutex> lock(mu_);
  return execute_result_;
}
Json Outputs::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}
std::vector<Json> Outputs::display_data() const {
  std::lock_guard<std::mutex> lock(mu_);
  return display_data_;
}
std::vector<std::shared_ptr<const DataMessage>> Outputs::data() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}
bool Outputs::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_;
}
bool Outputs::WaitIdle(Micros timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return idle_; });
}

void Outputs::AppendStream(std::string_view name, std::string_view text) {
  std::lock_guard<std::mutex> lock(mu_);
  (name == "stderr" ? stderr_ : stdout_).append(text);
}

void Outputs::Store(std::string_view msg_type, Json content, Frames buffers) {
  std::lock_guard<std::mutex> lock(mu_);
  if (msg_type == "execute_input") {
    execute_input_ = wire::GetString(content, "code");
  } else if (msg_type == "execute_result") {
    execute_result_ = std::move(content);
  } else if (msg_type == "error") {
    error_ = std::move(content);
  } else if (msg_type == "display_data") {
    display_data_.push_back(std::move(content));
  } else if (msg_type == "data_message") {
    auto d = std::make_shared<DataMessage>();
    d->content = std::move(content);
    d->buffers = std::move(buffers);
    data_.push_back(std::move(d));
  }
}

void Outputs::MarkIdle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_ = true;
  }
  cv_.notify_all();
}

Status Submitted::Wait(Micros timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto r = reply.Get(timeout);
  if (!r.ok()) return r.status();
  if (outputs) {
    auto left = std::chrono::duration_cast<Micros>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = Micros(0);
    if (!outputs->WaitIdle(left))
      return Status::TimedOut("the reply to " + msg_id + " arrived but its output is incomplete");
  }
  return Status::Ok();
}

}  // namespace shoal
