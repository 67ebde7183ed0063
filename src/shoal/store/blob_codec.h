// The byte format of a buffer list in an SQLite BLOB column (instead of upstream's pickle).
//
//   "SHB1" | u32 count | count x (u64 length | length bytes)      (integers little-endian)
//
// The magic tells shoal's rows from a Python SQLiteDB's pickled ones. Pure functions; safe
// from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "shoal/status.h"
#include "shoal/store/blob.h"

namespace shoal::store {

// Encodes `buffers` (byte-exact, zero-length buffers included).
std::string EncodeBlobs(const std::vector<Blob>& buffers);

// Decodes `bytes` into Blobs that share one copy of `bytes`. kIOError when the bytes are not
// in the format above (a corrupt or foreign column).
Result<std::vector<Blob>> DecodeBlobs(std::string_view bytes);

}  // namespace shoal::store
