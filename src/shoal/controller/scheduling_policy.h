// Scheduling schemes: how the task scheduler picks one engine among the eligible ones.
//
// IPython Parallel's TaskScheduler.scheme_name. PickEngine is a pure function of the candidate
// engines' loads (outstanding task counts) given in LRU order, index 0 being the least recently
// used; the random schemes draw from an explicit, seeded Rng so tests are reproducible.
//
// Thread rule: everything here is a value or a pure function; an Rng must not be shared
// between threads without external locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>

#include "shoal/status.h"

namespace shoal::controller {

enum class Scheme {
  kLeastLoad,    // "leastload" (default): first engine with the minimal load
  kLru,          // "lru": the least recently used engine
  kPlainRandom,  // "plainrandom": uniform
  kTwoBin,       // "twobin": two uniform draws, keep the less recently used
  kWeighted,     // "weighted": two draws weighted by 1/load, keep the less loaded
  kPure,         // "pure": round robin, no dependencies/targets/retries/timeouts
};

// Accepts exactly the upstream names above; anything else is kInvalidArgument.
Result<Scheme> ParseScheme(std::string_view name);
// The upstream name, e.g. "leastload".
const char* SchemeName(Scheme scheme);

// A small deterministic generator. Its outputs depend only on the seed (no std distributions,
// whose results differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}
  uint64_t Next() { return engine_(); }
  // Uniform in [0, n); n must be > 0.
  size_t Uniform(size_t n);
  // Uniform in [0, 1).
  double UniformDouble();

 private:
  std::mt19937_64 engine_;
};

// Returns an index into `loads` (LRU order, index 0 = least recently used), which must be
// non-empty (returns 0 if it is empty):
//   leastload: the first minimal load;  lru and pure: 0 (round robin through the LRU order);
//   plainrandom: uniform;  twobin: the smaller of two uniform draws;
//   weighted: weights 1/(1e-6 + load), two weighted draws, the one with the larger weight
//   (the first draw on a tie).
// Only the random schemes use `rng`.
size_t PickEngine(Scheme scheme, std::span<const int> loads, Rng& rng);

}  // namespace shoal::controller
