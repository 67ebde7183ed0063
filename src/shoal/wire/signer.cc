#include "shoal/wire/signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

namespace shoal::wire {

// HMAC computed with two pre-keyed digest contexts (inner and outer pad), copied per message:
// this avoids re-deriving the key pads for every frame set on the hot path.
struct Signer::Digest {
  const EVP_MD* md = nullptr;
  EVP_MD_CTX* inner = nullptr;
  EVP_MD_CTX* outer = nullptr;
  ~Digest() {
    EVP_MD_CTX_free(inner);
    EVP_MD_CTX_free(outer);
  }
};

namespace {
constexpr char kHex[] = "0123456789abcdef";
}

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 15];
  }
  return out;
}

Signer::Signer(std::string key, std::string scheme)
    : key_(std::move(key)), scheme_(std::move(scheme)), digest_(std::make_unique<Digest>()) {}

Signer::~Signer() = default;

Result<std::unique_ptr<Signer>> Signer::Create(std::string key, std::string_view scheme) {
  if (scheme.substr(0, 5) != "hmac-")
    return Status::InvalidArgument("signature scheme must start with 'hmac-': '" +
                                   std::string(scheme) + "'");
  std::string name(scheme.substr(5));
  const EVP_MD* md = EVP_get_digestbyname(name.c_str());
  if (md == nullptr)
    return Status::InvalidArgument("unknown signature scheme '" + std::string(scheme) + "'");
  std::unique_ptr<Signer> s(new Signer(std::move(key), std::string(scheme)));
  s->history_.reserve(kHistorySize);
  if (!s->enabled()) return s;

  Digest& d = *s->digest_;
  d.md = md;
  size_t block = static_cast<size_t>(EVP_MD_block_size(md));
  std::string k = s->key_;
  if (k.size() > block) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(k.data(), k.size(), out, &n, md, nullptr);
    k.assign(reinterpret_cast<char*>(out), n);
  }
  k.resize(block, '\0');
  std::string ipad(block, '\0'), opad(block, '\0');
  for (size_t i = 0; i < block; ++i) {
    ipad[i] = static_cast<char>(k[i] ^ 0x36);
    opad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  d.inner = EVP_MD_CTX_new();
  d.outer = EVP_MD_CTX_new();
  if (!d.inner || !d.outer || !EVP_DigestInit_ex(d.inner, md, nullptr) ||
      !EVP_DigestUpdate(d.inner, ipad.data(), block) || !EVP_DigestInit_ex(d.outer, md, nullptr) ||
      !EVP_DigestUpdate(d.outer, opad.data(), block))
    return Status::Internal("OpenSSL digest initialisation failed");
  return s;
}

std::string Signer::Sign(std::string_view header, std::string_view parent,
                         std::string_view metadata, std::string_view content) const {
  if (!enabled()) return {};
  const Digest& d = *digest_;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0, m = 0;
  EVP_MD_CTX_copy_ex(ctx, d.inner);
  for (std::string_view part : {header, parent, metadata, content})
    EVP_DigestUpdate(ctx, part.data(), part.size());
  EVP_DigestFinal_ex(ctx, inner, &n);
  EVP_MD_CTX_copy_ex(ctx, d.outer);
  EVP_DigestUpdate(ctx, inner, n);
  EVP_DigestFinal_ex(ctx, mac, &m);
  EVP_MD_CTX_free(ctx);
  return HexEncode(std::string_view(reinterpret_cast<char*>(mac), m));
}

Status Signer::Check(std::string_view signature, std::string_view header, std::string_view parent,
                     std::string_view metadata, std::string_view content, bool record) {
  if (!enabled()) return Status::Ok();
  if (signature.empty()) return Status::ProtocolError("Unsigned Message");
  std::string expected = Sign(header, parent, metadata, content);
  // Constant-time comparison: the signature is attacker-controlled.
  if (signature.size() != expected.size() ||
      CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0)
    return Status::ProtocolError("Invalid Signature");
  if (!record) return Status::Ok();
  if (history_.count(expected)) return Status::ProtocolError("Duplicate Signature");
  if (history_.size() >= kHistorySize) {
    // Forget a tenth of the history (arbitrary members), as IPython Parallel does.
    size_t drop = kHistorySize / 10;
    for (auto it = history_.begin(); drop > 0 && it != history_.end(); --drop)
      it = history_.erase(it);
  }
  history_.insert(std::move(expected));
  return Status::Ok();
}

}  // namespace shoal::wire
