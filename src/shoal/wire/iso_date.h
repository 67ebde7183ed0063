// ISO-8601 dates as IPython Parallel writes and reads them.
//
// Written: "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC; the fraction is left out when it is zero,
// as Python's isoformat does). Read: the pattern
//   ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$
// where a date without an offset is local time. Pure functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "shoal/common/clock.h"
#include "shoal/status.h"

namespace shoal::wire {

// Formats microseconds since the Unix epoch as a UTC ISO date ending in 'Z'.
std::string FormatIsoDate(Micros wall_micros);

// True when `text` matches the date pattern above (what the Hub coerces to a date).
bool LooksLikeIsoDate(std::string_view text);

// Parses a date matching the pattern into microseconds since the Unix epoch.
// Fails with kInvalidArgument when the text does not match or the fields are out of range.
Result<Micros> ParseIsoDate(std::string_view text);

}  // namespace shoal::wire
