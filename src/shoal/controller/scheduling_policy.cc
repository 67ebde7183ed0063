#include "shoal/controller/scheduling_policy.h"

#include <string>

namespace shoal::controller {
namespace {

struct SchemeNameEntry {
  Scheme scheme;
  const char* name;
};

constexpr SchemeNameEntry kSchemeNames[] = {
    {Scheme::kLeastLoad, "leastload"},     {Scheme::kLru, "lru"},
    {Scheme::kPlainRandom, "plainrandom"}, {Scheme::kTwoBin, "twobin"},
    {Scheme::kWeighted, "weighted"},       {Scheme::kPure, "pure"},
};

double InverseLoad(int load) { return 1.0 / (1e-6 + static_cast<double>(load)); }

// One draw proportional to InverseLoad over `loads`, given their precomputed sum `total`.
// Two passes instead of a cumulative-sum buffer so picking never allocates.
size_t WeightedDraw(std::span<const int> loads, double total, Rng& rng) {
  const double x = rng.UniformDouble() * total;
  double sum = 0;
  for (size_t i = 0; i < loads.size(); ++i) {
    sum += InverseLoad(loads[i]);
    if (sum >= x) return i;
  }
  return loads.size() - 1;  // only reachable through rounding
}

}  // namespace

Result<Scheme> ParseScheme(std::string_view name) {
  for (const auto& entry : kSchemeNames) {
    if (name == entry.name) return entry.scheme;
  }
  return Status::InvalidArgument("unknown task scheme '" + std::string(name) +
                                 "' (expected leastload, lru, plainrandom, twobin, weighted "
                                 "or pure)");
}

const char* SchemeName(Scheme scheme) {
  for (const auto& entry : kSchemeNames) {
    if (entry.scheme == scheme) return entry.name;
  }
  return "unknown";
}

size_t Rng::Uniform(size_t n) {
  // Rejection sampling: plain modulo would favour small values when n does not divide 2^64.
  const uint64_t bound = static_cast<uint64_t>(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return static_cast<size_t>(x % bound);
}

double Rng::UniformDouble() {
  // The top 53 bits fill a double's mantissa exactly.
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

size_t PickEngine(Scheme scheme, std::span<const int> loads, Rng& rng) {
  if (loads.empty()) return 0;
  switch (scheme) {
    case Scheme::kLeastLoad: {
      size_t best = 0;
      for (size_t i = 1; i < loads.size(); ++i) {
        if (loads[i] < loads[best]) best = i;
      }
      return best;
    }
    case Scheme::kLru:
    case Scheme::kPure:
      return 0;
    case Scheme::kPlainRandom:
      return rng.Uniform(loads.size());
    case Scheme::kTwoBin: {
      const size_t a = rng.Uniform(loads.size());
      const size_t b = rng.Uniform(loads.size());
      return a < b ? a : b;
    }
    case Scheme::kWeighted: {
      double total = 0;
      for (int load : loads) total += InverseLoad(load);
      const size_t x = WeightedDraw(loads, total, rng);
      const size_t y = WeightedDraw(loads, total, rng);
      return InverseLoad(loads[y]) > InverseLoad(loads[x]) ? y : x;
    }
  }
  return 0;
}

}  // namespace shoal::controller
