// The Jupyter wire format as IPython Parallel uses it: framing, parsing, building.
//
//   [ident_0 .. ident_k, "<IDS|MSG>", signature, header, parent_header, metadata, content,
//    buffer_0 ..]
//
// A Message keeps every received frame (so relays can forward frames without copying) and
// the parsed JSON of the parts the receiver asked for. Parsing goes through Decode(), the one
// place where frames from the network become a Message; building goes through Encode().
//
// Thread rule: Messages are values owned by one thread at a time.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "shoal/status.h"
#include "shoal/wire/signer.h"

namespace shoal::wire {

using Json = nlohmann::json;
using Frames = std::vector<zmq::message_t>;

inline constexpr std::string_view kDelimiter = "<IDS|MSG>";
// Header "version" we write; clients treat a header without a 5.x version as protocol 4.
inline constexpr std::string_view kProtocolVersion = "5.3";

// Frame positions relative to the delimiter.
enum FrameOffset : size_t {
  kSignatureOffset = 1,
  kHeaderOffset = 2,
  kParentOffset = 3,
  kMetadataOffset = 4,
  kContentOffset = 5,
  kFirstBufferOffset = 6,
};

inline std::string_view View(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

struct Message {
  Frames frames;     // all frames, identities first
  size_t delim = 0;  // index of the delimiter frame
  Json header;       // parsed when asked (always, in practice)
  Json parent;       // parsed when asked
  Json metadata;     // parsed when asked
  Json content;      // parsed when asked; null otherwise

  size_t num_identities() const { return delim; }
  std::string_view identity(size_t i) const { return View(frames[i]); }
  std::string_view frame(size_t offset) const { return View(frames[delim + offset]); }
  size_t num_buffers() const { return frames.size() - delim - kFirstBufferOffset; }
  const zmq::message_t& buffer(size_t i) const { return frames[delim + kFirstBufferOffset + i]; }

  // Convenience accessors; "" when absent or not a string.
  std::string msg_type() const;
  std::string msg_id() const;
  std::string parent_msg_id() const;
};

struct DecodeOptions {
  bool parse_parent = true;
  bool parse_metadata = true;
  bool parse_content = false;
  bool record_signature = true;  // reject and remember replays
  size_t max_bytes = 0;          // 0 = no limit; otherwise total size limit
};

// Splits, verifies and parses `frames`. kProtocolError when there is no delimiter, fewer than
// five frames follow it, the signature is missing/invalid/replayed, a part is not a JSON
// object, the header lacks msg_id/msg_type, or the message exceeds max_bytes.
// `signer` may be null (no checking). On failure the frames are still moved into `out`
// (callers may want the identities to send an error back).
Status Decode(Frames&& frames, Signer* signer, const DecodeOptions& options, Message& out);

// Index of the first delimiter frame, or nullopt.
std::optional<size_t> FindDelimiter(const Frames& frames);

// A header for a new message from `session`.
Json MakeHeader(std::string_view msg_type, std::string_view session, std::string_view username);

// Builds frames: identities, delimiter, signature, the four JSON parts, then buffers (moved).
Frames Encode(const std::vector<std::string>& identities, const Json& header, const Json& parent,
              const Json& metadata, const Json& content, const Signer& signer, Frames buffers = {});

// Like Encode, for parts that are already JSON text (e.g. a request's header frame reused
// as the reply's parent). Identity frames are copied from `identities`.
Frames EncodeParts(const std::vector<zmq::message_t>& identities, std::string_view header,
                   std::string_view parent, std::string_view metadata, std::string_view content,
                   const Signer& signer, Frames buffers = {});

// Re-signs a message whose signed parts were edited: replaces frames from the header on with
// the dumps of the given JSON values (keeping identities and buffers) and a new signature.
void Resign(Message& msg, const Json& header, const Json& parent, const Json& metadata,
            const Signer& signer);

// The one parser for JSON from the network: `text` must be a JSON object nested at most
// kMaxJsonDepth deep (deeper documents would exhaust the stack of recursive JSON code).
// kProtocolError naming `what` otherwise.
inline constexpr int kMaxJsonDepth = 64;
Status ParseJsonObject(std::string_view text, const char* what, Json& out);

// Serializes a JSON part as IPython Parallel's json packer does (UTF-8, NaN rejected).
std::string Dump(const Json& j);

// A copy of a frame that shares the data (libzmq reference-counts large messages).
zmq::message_t ShareFrame(zmq::message_t& m);

}  // namespace shoal::wire
