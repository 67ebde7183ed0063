// Signer: HMAC signatures of Jupyter wire messages, and replay rejection.
//
// The signature is the lowercase hex HMAC, with the shared key, over the bytes of the four
// signed frames (header, parent_header, metadata, content). An empty key disables signing:
// signatures are empty and nothing is checked. The scheme is "hmac-<digest>" with any
// OpenSSL digest name ("hmac-sha256" is IPython Parallel's default).
//
// Thread rule: Sign() is const and safe from any thread; Check() records seen signatures and
// must be called from one thread at a time (one Signer per receiving thread).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "shoal/status.h"

namespace shoal::wire {

class Signer {
 public:
  // kInvalidArgument for an unknown or malformed scheme.
  static Result<std::unique_ptr<Signer>> Create(std::string key,
                                                std::string_view scheme = "hmac-sha256");
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  bool enabled() const { return !key_.empty(); }
  const std::string& key() const { return key_; }
  const std::string& scheme() const { return scheme_; }

  // The hex signature of the four frames; "" when signing is disabled.
  std::string Sign(std::string_view header, std::string_view parent, std::string_view metadata,
                   std::string_view content) const;

  // Verifies `signature` over the four frames and, when `record` is set, rejects and then
  // remembers signatures already seen (replays). kProtocolError with "Unsigned Message",
  // "Invalid Signature" or "Duplicate Signature". Always OK when signing is disabled.
  Status Check(std::string_view signature, std::string_view header, std::string_view parent,
               std::string_view metadata, std::string_view content, bool record = true);

  // How many signatures the replay history holds at most (IPython Parallel: 65536).
  static constexpr size_t kHistorySize = 65536;

 private:
  Signer(std::string key, std::string scheme);
  struct Digest;
  std::string key_;
  std::string scheme_;
  std::unique_ptr<Digest> digest_;
  std::unordered_set<std::string> history_;
};

// Lowercase hex of `bytes`.
std::string HexEncode(std::string_view bytes);

}  // namespace shoal::wire
