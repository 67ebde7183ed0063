#include "shoal/controller/scheduling_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace shoal::controller {
namespace {

TEST(ParseScheme, RoundTripsEveryName) {
  for (Scheme s : {Scheme::kLeastLoad, Scheme::kLru, Scheme::kPlainRandom, Scheme::kTwoBin,
                   Scheme::kWeighted, Scheme::kPure}) {
    auto parsed = ParseScheme(SchemeName(s));
    ASSERT_TRUE(parsed.ok()) << SchemeName(s);
    EXPECT_EQ(*parsed, s);
  }
}

TEST(ParseScheme, Names) {
  EXPECT_STREQ(SchemeName(Scheme::kLeastLoad), "leastload");
  EXPECT_STREQ(SchemeName(Scheme::kLru), "lru");
  EXPECT_STREQ(SchemeName(Scheme::kPlainRandom), "plainrandom");
  EXPECT_STREQ(SchemeName(Scheme::kTwoBin), "twobin");
  EXPECT_STREQ(SchemeName(Scheme::kWeighted), "weighted");
  EXPECT_STREQ(SchemeName(Scheme::kPure), "pure");
}

TEST(ParseScheme, RejectsUnknown) {
  for (const char* bad : {"", "LeastLoad", "least_load", "none", "random", "lru "}) {
    auto parsed = ParseScheme(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(PickEngine, DeterministicSchemes) {
  struct Case {
    Scheme scheme;
    std::vector<int> loads;
    size_t want;
  } cases[] = {
      {Scheme::kLeastLoad, {0}, 0},
      {Scheme::kLeastLoad, {3, 1, 2}, 1},
      {Scheme::kLeastLoad, {2, 1, 1, 0, 0}, 3},  // first minimum = least recently used
      {Scheme::kLeastLoad, {1, 1, 1}, 0},
      {Scheme::kLeastLoad, {5, 4, 3, 2, 1}, 4},
      {Scheme::kLru, {9, 0, 0}, 0},
      {Scheme::kLru, {0}, 0},
      {Scheme::kPure, {4, 0}, 0},
  };
  Rng rng(1);
  for (const auto& c : cases) {
    EXPECT_EQ(PickEngine(c.scheme, c.loads, rng), c.want)
        << SchemeName(c.scheme) << " loads[0]=" << c.loads[0];
  }
}

TEST(PickEngine, EmptyLoadsReturnZero) {
  Rng rng(1);
  for (Scheme s : {Scheme::kLeastLoad, Scheme::kLru, Scheme::kPlainRandom, Scheme::kTwoBin,
                   Scheme::kWeighted, Scheme::kPure}) {
    EXPECT_EQ(PickEngine(s, {}, rng), 0u) << SchemeName(s);
  }
}

TEST(PickEngine, SingleCandidateAlwaysZero) {
  Rng rng(7);
  const std::vector<int> one = {3};
  for (Scheme s : {Scheme::kPlainRandom, Scheme::kTwoBin, Scheme::kWeighted}) {
    for (int i = 0; i < 100; ++i) ASSERT_EQ(PickEngine(s, one, rng), 0u) << SchemeName(s);
  }
}

TEST(Rng, SameSeedSameSequence) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, UniformStaysInRange) {
  Rng rng(3);
  for (size_t n : {1u, 2u, 3u, 7u, 1000u}) {
    for (int i = 0; i < 1000; ++i) ASSERT_LT(rng.Uniform(n), n);
  }
  for (int i = 0; i < 1000; ++i) {
    double d = rng.UniformDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
}

TEST(PickEngine, RandomSchemesAreReproducibleWithASeed) {
  const std::vector<int> loads = {0, 1, 2, 0, 3};
  for (Scheme s : {Scheme::kPlainRandom, Scheme::kTwoBin, Scheme::kWeighted}) {
    Rng a(99), b(99);
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(PickEngine(s, loads, a), PickEngine(s, loads, b)) << SchemeName(s);
    }
  }
}

// Draws `n` picks and returns how often each index came up.
std::vector<int> Histogram(Scheme s, const std::vector<int>& loads, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> counts(loads.size());
  for (int i = 0; i < n; ++i) {
    size_t idx = PickEngine(s, loads, rng);
    EXPECT_LT(idx, loads.size());
    if (idx < loads.size()) ++counts[idx];
  }
  return counts;
}

TEST(PickEngine, PlainRandomIsRoughlyUniform) {
  const int n = 40000;
  auto counts = Histogram(Scheme::kPlainRandom, {5, 0, 2, 9}, n, 11);
  for (int c : counts) {
    EXPECT_NEAR(c, n / 4, n / 40);  // within 10% of the expectation
  }
}

TEST(PickEngine, TwoBinFavoursTheLeastRecentlyUsed) {
  // P(min of two uniform draws over k slots = i) = (2(k-i)-1)/k^2: 7/16, 5/16, 3/16, 1/16.
  const int n = 40000;
  auto counts = Histogram(Scheme::kTwoBin, {0, 0, 0, 0}, n, 12);
  const double expected[] = {7.0 / 16, 5.0 / 16, 3.0 / 16, 1.0 / 16};
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_NEAR(counts[i], expected[i] * n, 0.02 * n) << i;
  }
}

TEST(PickEngine, WeightedAvoidsLoadedEngines) {
  // An idle engine weighs a million times more than a loaded one, so it wins essentially always.
  const int n = 10000;
  auto counts = Histogram(Scheme::kWeighted, {3, 1, 0, 2}, n, 13);
  EXPECT_GE(counts[2], n - 5);

  // Loads 1 and 3: weights 1 and 1/3, so single draws are 3:1; keeping the lighter of two
  // draws picks engine 0 unless both draws hit engine 1: 1 - (1/4)^2 = 15/16.
  counts = Histogram(Scheme::kWeighted, {1, 3}, 40000, 14);
  EXPECT_NEAR(counts[0], 40000.0 * 15 / 16, 0.01 * 40000);

  // Equal loads: both draws are uniform and the first is kept on ties, so it is uniform.
  counts = Histogram(Scheme::kWeighted, {2, 2, 2, 2}, 40000, 15);
  for (int c : counts) EXPECT_NEAR(c, 10000, 1000);
}

}  // namespace
}  // namespace shoal::controller
