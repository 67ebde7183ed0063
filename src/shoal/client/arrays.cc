#include "shoal/arrays.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace shoal {
namespace {

// Lengths in pickles are little-endian; so are the doubles numpy.frombuffer reads here.
static_assert(std::endian::native == std::endian::little);

// Pickle protocol 5 opcodes used below (Lib/pickletools.py documents them).
constexpr char kProto = '\x80';
constexpr char kFrame = '\x95';
constexpr char kShortBinUnicode = '\x8c';
constexpr char kBinUnicode = 'X';
constexpr char kStackGlobal = '\x93';
constexpr char kEmptyDict = '}';
constexpr char kSetItem = 's';
constexpr char kNextBuffer = '\x97';
constexpr char kTuple1 = '\x85';
constexpr char kTuple2 = '\x86';
constexpr char kReduce = 'R';
constexpr char kStop = '.';
constexpr char kShortBinBytes = 'C';
constexpr char kBinBytes = 'B';
constexpr char kBinBytes8 = '\x8e';

class PickleWriter {
 public:
  PickleWriter() { out_ += {kProto, '\x05'}; }
  void Str(std::string_view s) {
    if (s.size() < 256) {
      out_ += kShortBinUnicode;
      out_ += static_cast<char>(s.size());
    } else {
      out_ += kBinUnicode;
      uint32_t n = static_cast<uint32_t>(s.size());
      out_.append(reinterpret_cast<const char*>(&n), 4);  // little-endian (x86, arm64)
    }
    out_ += s;
  }
  void Global(std::string_view module, std::string_view name) {
    Str(module);
    Str(name);
    out_ += kStackGlobal;
  }
  void Op(char op) { out_ += op; }
  std::string Finish() {
    out_ += kStop;
    return std::move(out_);
  }

 private:
  std::string out_;
};

zmq::message_t Message(const std::string& s) { return zmq::message_t(s.data(), s.size()); }

template <typename T>
T ReadLe(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Json Pickle5Metadata() { return Json{{"serializer", "shoal-pickle5"}}; }

// Waits for every reply; the first failure wins.
Result<std::vector<ReplyPtr>> Collect(Result<std::vector<Submitted>> sent, Micros timeout) {
  if (!sent.ok()) return sent.status();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<ReplyPtr> replies;
  for (const auto& s : *sent) {
    auto left = std::chrono::duration_cast<Micros>(deadline - std::chrono::steady_clock::now());
    auto reply = s.reply.Get(std::max(left, Micros(0)));
    if (!reply.ok()) return reply.status();
    if (Status st = (*reply)->error(); !st.ok()) return st;
    replies.push_back(std::move(*reply));
  }
  return replies;
}

}  // namespace

std::pair<size_t, size_t> PartitionBounds(size_t n, size_t p, size_t parts) {
  size_t base = n / parts, extra = n % parts;
  if (p < extra) return {p * (base + 1), p * (base + 1) + base + 1};
  size_t low = p * base + extra;
  return {low, low + base};
}

namespace pickle5 {

// An apply_request's frames: the function's pickle, then the value (args, kwargs).
Frames PushRequest(const std::string& name, std::span<const double> values) {
  // shoal._remote.push, then (({name: numpy.frombuffer(<buffer 1>, "float64")},), {})
  PickleWriter f;
  f.Global("shoal._remote", "push");
  PickleWriter w;
  w.Op(kEmptyDict);
  w.Str(name);
  w.Global("numpy", "frombuffer");
  w.Op(kNextBuffer);
  w.Str("float64");
  w.Op(kTuple2);
  w.Op(kReduce);
  w.Op(kSetItem);
  w.Op(kTuple1);
  w.Op(kEmptyDict);
  w.Op(kTuple2);
  Frames frames;
  frames.push_back(Message(f.Finish()));
  frames.push_back(Message(w.Finish()));
  frames.emplace_back(values.data(), values.size_bytes());
  return frames;
}

Frames PullRequest(const std::string& name) {
  // shoal._remote.pull_float64, then ((name,), {})
  PickleWriter f;
  f.Global("shoal._remote", "pull_float64");
  PickleWriter w;
  w.Str(name);
  w.Op(kTuple1);
  w.Op(kEmptyDict);
  w.Op(kTuple2);
  Frames frames;
  frames.push_back(Message(f.Finish()));
  frames.push_back(Message(w.Finish()));
  return frames;
}

Result<std::vector<double>> ParseBytesReply(const std::vector<std::string_view>& frames) {
  auto bad = [](const char* why) {
    return Status::InvalidArgument(std::string("not a float64 reply: ") + why);
  };
  if (frames.empty()) return bad("no frames");
  std::string_view data;
  if (frames.size() == 2) {
    data = frames[1];  // large: the bytes travelled out-of-band
  } else if (frames.size() == 1) {
    std::string_view p = frames[0];
    size_t i = 0;
    if (p.size() < 3 || p[0] != kProto) return bad("no pickle header");
    i = 2;
    if (p.size() > i + 9 && p[i] == kFrame) i += 9;
    if (i >= p.size()) return bad("truncated");
    uint64_t n = 0;
    char op = p[i++];
    if (op == kShortBinBytes && i + 1 <= p.size()) {
      n = static_cast<unsigned char>(p[i]);
      i += 1;
    } else if (op == kBinBytes && i + 4 <= p.size()) {
      n = ReadLe<uint32_t>(p.data() + i);
      i += 4;
    } else if (op == kBinBytes8 && i + 8 <= p.size()) {
      n = ReadLe<uint64_t>(p.data() + i);
      i += 8;
    } else {
      return bad("the value is not bytes");
    }
    if (n > p.size() - i) return bad("truncated bytes");
    data = p.substr(i, n);
  } else {
    return bad("more than one buffer");
  }
  if (data.size() % sizeof(double)) return bad("length not a multiple of 8");
  std::vector<double> out(data.size() / sizeof(double));
  if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
  return out;
}

}  // namespace pickle5

Status PushDoubles(Client& client, const std::vector<int>& targets, const std::string& name,
                   std::span<const double> values, Micros timeout) {
  if (targets.empty()) return Status::InvalidArgument("push: no target engines");
  auto replies = Collect(
      client.ApplyDirect(targets, pickle5::PushRequest(name, values), Pickle5Metadata()), timeout);
  return replies.status();
}

Result<std::vector<std::vector<double>>> PullDoubles(Client& client,
                                                     const std::vector<int>& targets,
                                                     const std::string& name, Micros timeout) {
  if (targets.empty()) return Status::InvalidArgument("pull: no target engines");
  SHOAL_ASSIGN_OR_RETURN(
      auto replies,
      Collect(client.ApplyDirect(targets, pickle5::PullRequest(name), Pickle5Metadata()), timeout));
  std::vector<std::vector<double>> out;
  for (const auto& r : replies) {
    std::vector<std::string_view> frames;
    for (size_t i = 0; i < r->num_buffers(); ++i)
      frames.emplace_back(static_cast<const char*>(r->buffer(i).data()), r->buffer(i).size());
    SHOAL_ASSIGN_OR_RETURN(auto values, pickle5::ParseBytesReply(frames));
    out.push_back(std::move(values));
  }
  return out;
}

Status ScatterDoubles(Client& client, const std::vector<int>& targets, const std::string& name,
                      std::span<const double> values, Micros timeout) {
  if (targets.empty()) return Status::InvalidArgument("scatter: no target engines");
  std::vector<Submitted> sent;
  for (size_t p = 0; p < targets.size(); ++p) {
    auto [low, high] = PartitionBounds(values.size(), p, targets.size());
    SHOAL_ASSIGN_OR_RETURN(
        auto s, client.ApplyDirect({targets[p]},
                                   pickle5::PushRequest(name, values.subspan(low, high - low)),
                                   Pickle5Metadata()));
    sent.push_back(std::move(s[0]));
  }
  return Collect(std::move(sent), timeout).status();
}

Result<std::vector<double>> GatherDoubles(Client& client, const std::vector<int>& targets,
                                          const std::string& name, Micros timeout) {
  SHOAL_ASSIGN_OR_RETURN(auto parts, PullDoubles(client, targets, name, timeout));
  std::vector<double> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

}  // namespace shoal
