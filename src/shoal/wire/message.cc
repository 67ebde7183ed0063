#include "shoal/wire/message.h"

#include <algorithm>

#include "shoal/common/clock.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/iso_date.h"

namespace shoal::wire {
namespace {

std::string StringField(const Json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Deepest bracket nesting of JSON text, ignoring brackets inside strings.
int NestingDepth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

Status ParseObject(std::string_view text, const char* what, Json& out) {
  return ParseJsonObject(text, what, out);
}

}  // namespace

Status ParseJsonObject(std::string_view text, const char* what, Json& out) {
  if (NestingDepth(text) > kMaxJsonDepth)
    return Status::ProtocolError(std::string(what) + " is nested more than " +
                                 std::to_string(kMaxJsonDepth) + " levels deep");
  // nlohmann's parser reports errors without throwing here; exceptions stop at this line.
  out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) return Status::ProtocolError(std::string("malformed JSON in ") + what);
  if (!out.is_object()) return Status::ProtocolError(std::string(what) + " is not a JSON object");
  return Status::Ok();
}

std::string Message::msg_type() const { return StringField(header, "msg_type"); }
std::string Message::msg_id() const { return StringField(header, "msg_id"); }
std::string Message::parent_msg_id() const { return StringField(parent, "msg_id"); }

std::optional<size_t> FindDelimiter(const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    if (View(frames[i]) == kDelimiter) return i;
  return std::nullopt;
}

Status Decode(Frames&& frames, Signer* signer, const DecodeOptions& options, Message& out) {
  out.frames = std::move(frames);
  out.header = Json();
  out.parent = Json();
  out.metadata = Json();
  out.content = Json();
  auto delim = FindDelimiter(out.frames);
  if (!delim) return Status::ProtocolError("no <IDS|MSG> delimiter");
  out.delim = *delim;
  if (out.frames.size() < out.delim + kFirstBufferOffset)
    return Status::ProtocolError("fewer than 5 frames after the delimiter");
  if (options.max_bytes) {
    size_t total = 0;
    for (const auto& f : out.frames) total += f.size();
    if (total > options.max_bytes)
      return Status::ProtocolError("message of " + std::to_string(total) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options.max_bytes));
  }
  if (signer) {
    SHOAL_RETURN_NOT_OK(signer->Check(out.frame(kSignatureOffset), out.frame(kHeaderOffset),
                                      out.frame(kParentOffset), out.frame(kMetadataOffset),
                                      out.frame(kContentOffset), options.record_signature));
  }
  SHOAL_RETURN_NOT_OK(ParseObject(out.frame(kHeaderOffset), "header", out.header));
  if (!out.header.contains("msg_id") || !out.header["msg_id"].is_string() ||
      !out.header.contains("msg_type") || !out.header["msg_type"].is_string())
    return Status::ProtocolError("header lacks msg_id or msg_type");
  if (options.parse_parent)
    SHOAL_RETURN_NOT_OK(ParseObject(out.frame(kParentOffset), "parent_header", out.parent));
  if (options.parse_metadata)
    SHOAL_RETURN_NOT_OK(ParseObject(out.frame(kMetadataOffset), "metadata", out.metadata));
  if (options.parse_content)
    SHOAL_RETURN_NOT_OK(ParseObject(out.frame(kContentOffset), "content", out.content));
  return Status::Ok();
}

Json MakeHeader(std::string_view msg_type, std::string_view session, std::string_view username) {
  Json h = Json::object();
  h["msg_id"] = NewMsgId(session);
  h["msg_type"] = msg_type;
  h["username"] = username;
  h["session"] = session;
  h["date"] = FormatIsoDate(SystemClock::Instance().WallMicros());
  h["version"] = kProtocolVersion;
  return h;
}

std::string Dump(const Json& j) {
  // Invalid UTF-8 from a peer is replaced rather than thrown on.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {
zmq::message_t FromString(const std::string& s) { return zmq::message_t(s.data(), s.size()); }
}  // namespace

Frames Encode(const std::vector<std::string>& identities, const Json& header, const Json& parent,
              const Json& metadata, const Json& content, const Signer& signer, Frames buffers) {
  Frames out;
  out.reserve(identities.size() + kFirstBufferOffset + buffers.size());
  for (const auto& id : identities) out.push_back(FromString(id));
  std::string h = Dump(header), p = Dump(parent), m = Dump(metadata), c = Dump(content);
  out.emplace_back(kDelimiter.data(), kDelimiter.size());
  out.push_back(FromString(signer.Sign(h, p, m, c)));
  out.push_back(FromString(h));
  out.push_back(FromString(p));
  out.push_back(FromString(m));
  out.push_back(FromString(c));
  for (auto& b : buffers) out.push_back(std::move(b));
  return out;
}

Frames EncodeParts(const std::vector<zmq::message_t>& identities, std::string_view header,
                   std::string_view parent, std::string_view metadata, std::string_view content,
                   const Signer& signer, Frames buffers) {
  Frames out;
  out.reserve(identities.size() + kFirstBufferOffset + buffers.size());
  for (const auto& id : identities) out.emplace_back(id.data(), id.size());
  out.emplace_back(kDelimiter.data(), kDelimiter.size());
  out.push_back(FromString(signer.Sign(header, parent, metadata, content)));
  out.emplace_back(header.data(), header.size());
  out.emplace_back(parent.data(), parent.size());
  out.emplace_back(metadata.data(), metadata.size());
  out.emplace_back(content.data(), content.size());
  for (auto& b : buffers) out.push_back(std::move(b));
  return out;
}

void Resign(Message& msg, const Json& header, const Json& parent, const Json& metadata,
            const Signer& signer) {
  std::string h = Dump(header), p = Dump(parent), m = Dump(metadata);
  std::string_view c = msg.frame(kContentOffset);
  std::string sig = signer.Sign(h, p, m, c);
  msg.frames[msg.delim + kSignatureOffset] = FromString(sig);
  msg.frames[msg.delim + kHeaderOffset] = FromString(h);
  msg.frames[msg.delim + kParentOffset] = FromString(p);
  msg.frames[msg.delim + kMetadataOffset] = FromString(m);
  msg.header = header;
  msg.parent = parent;
  msg.metadata = metadata;
}

zmq::message_t ShareFrame(zmq::message_t& m) {
  zmq::message_t copy;
  copy.copy(m);
  return copy;
}

}  // namespace shoal::wire
