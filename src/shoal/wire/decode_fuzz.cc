// libFuzzer target for the wire decoder: arbitrary bytes become a multipart message and go
// through Decode() with and without a signing key. Built by the `fuzz` preset
// (clang, -fsanitize=fuzzer,address,undefined); CI runs it for 60 s.
//
// Input layout: frames separated by the byte sequence "\xff\x00" so the fuzzer can grow and
// split frames freely; a leading 'S' byte asks for a signed decode.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shoal/wire/message.h"

namespace {
shoal::wire::Signer* SignedSigner() {
  static auto s = std::move(shoal::wire::Signer::Create("fuzz-key").value());
  return s.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool sign = !in.empty() && in[0] == 'S';
  if (sign) in.remove_prefix(1);
  shoal::wire::Frames frames;
  size_t start = 0;
  while (frames.size() < 64) {
    size_t sep = in.find(std::string_view("\xff\x00", 2), start);
    std::string_view part =
        in.substr(start, sep == std::string_view::npos ? in.size() - start : sep - start);
    frames.emplace_back(part.data(), part.size());
    if (sep == std::string_view::npos) break;
    start = sep + 2;
  }
  shoal::wire::Message msg;
  shoal::wire::DecodeOptions opts;
  opts.parse_content = true;
  opts.max_bytes = 1 << 20;
  shoal::Status st =
      shoal::wire::Decode(std::move(frames), sign ? SignedSigner() : nullptr, opts, msg);
  if (st.ok()) {
    // Exercise the accessors and a re-encode of what was accepted.
    (void)msg.msg_type();
    (void)msg.parent_msg_id();
    auto signer = std::move(shoal::wire::Signer::Create("").value());
    auto out =
        shoal::wire::Encode({"x"}, msg.header, msg.parent, msg.metadata, msg.content, *signer);
    (void)out;
  }
  return 0;
}
