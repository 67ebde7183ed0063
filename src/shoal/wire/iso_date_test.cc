#include "shoal/wire/iso_date.h"

#include <gtest/gtest.h>

namespace shoal::wire {
namespace {

TEST(IsoDate, FormatsLikePython) {
  EXPECT_EQ(FormatIsoDate(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoDate(1'795'424'463'807'695LL), "2026-11-23T09:01:03.807695Z");
  EXPECT_EQ(FormatIsoDate(1'795'424'463'000'001LL), "2026-11-23T09:01:03.000001Z");
}

TEST(IsoDate, MatchesPattern) {
  struct Case {
    const char* text;
    bool match;
  } cases[] = {
      {"2026-11-23T09:01:03.807695Z", true},
      {"2026-11-23T09:01:03Z", true},
      {"2026-11-23T09:01:03", true},
      {"2026-11-23T09:01:03.8+02:00", true},
      {"2026-11-23T09:01:03-0530", true},
      {"2026-11-23T09:01:03.1234567Z", false},
      {"2026-11-23 09:01:03Z", false},
      {"2026-11-23T09:01Z", false},
      {"hello", false},
      {"2026-11-23T09:01:03Zx", false},
      {"", false},
  };
  for (const auto& c : cases) EXPECT_EQ(LooksLikeIsoDate(c.text), c.match) << c.text;
}

TEST(IsoDate, ParsesOffsetsAsInstants) {
  EXPECT_EQ(*ParseIsoDate("2026-11-23T09:01:03.807695Z"), 1'795'424'463'807'695LL);
  EXPECT_EQ(*ParseIsoDate("2026-11-23T11:01:03.807695+02:00"), 1'795'424'463'807'695LL);
  EXPECT_EQ(*ParseIsoDate("2026-11-23T04:01:03.807695-0500"), 1'795'424'463'807'695LL);
  EXPECT_EQ(*ParseIsoDate("2026-11-23T09:01:03.8Z"), 1'795'424'463'800'000LL);
}

TEST(IsoDate, RoundTrips) {
  for (Micros t : {0LL, 1LL, 999'999LL, 1'795'424'463'807'695LL, 4'102'444'800'000'000LL})
    EXPECT_EQ(*ParseIsoDate(FormatIsoDate(t)), t);
}

TEST(IsoDate, RejectsOutOfRange) {
  EXPECT_FALSE(ParseIsoDate("2026-13-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseIsoDate("2026-01-01T25:00:00Z").ok());
  EXPECT_EQ(ParseIsoDate("junk").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shoal::wire
