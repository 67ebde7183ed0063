// Query: IPython Parallel's Mongo-style record query, compiled once and evaluated per record.
//
// A query is a JSON object whose every entry is one condition; conditions are ANDed and an
// empty query matches every record. An entry is either
//   {key: literal}             equality (a null literal matches null or a missing key), or
//   {key: {"$op": arg, ...}}   every operator must hold (an empty operator object holds).
// Operators:
//   $eq $ne                    equality / its negation ($ne null = "key is set")
//   $lt $gt $lte $gte          ordering; holds only when both sides are numbers, both strings,
//                              or both dates (see below); anything else does not match
//   $in $nin                   arg is an array; equality with any / none of its elements
//   $all                       arg is a non-empty array; an array value must contain every
//                              element (a scalar value must equal every element), as in MongoDB
//   $mod                       arg is [divisor, remainder] (numbers, divisor != 0); holds when
//                              value % divisor == remainder with Python's sign rules
//   $exists                    arg is a boolean; true = value is not null
//   $glob                      arg is an fnmatch pattern (* ? [seq] [!seq], case-sensitive, no
//                              escapes, as Python's fnmatch on POSIX); the value must be a string
// Dates: a string anywhere in the query that matches wire::LooksLikeIsoDate is compared as an
// instant (microseconds since the epoch) against record values that are date strings, so
// "2026-01-01T01:00:00+01:00" equals "2026-01-01T00:00:00Z". Against any other value the
// string is an ordinary string. Numbers compare numerically (1 == 1.0); booleans are not
// numbers; arrays and objects compare by deep equality and have no order.
//
// Failure: Compile returns kInvalidArgument for a query that is not an object, an operator
// object key that is not a known operator, or an operator argument of the wrong shape.
// Evaluation never fails. Upstream DictDB evaluates $gt as $lt; this implements $gt.
//
// Thread rule: a compiled Query is immutable; Matches may be called from any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/status.h"

namespace shoal::store {

class Query {
 public:
  // Compiles `query`; kInvalidArgument as described above.
  static Result<Query> Compile(const nlohmann::json& query);

  // True when the record whose JSON fields are `fields` (an object; a missing key reads as
  // null) satisfies every condition.
  bool Matches(const nlohmann::json& fields) const;

  // When the query pins "msg_id" to a finite set of strings (a string literal, $eq or $in of
  // strings), that set, so a store can look records up instead of scanning. Matches() must
  // still be applied to each candidate (other conditions may reject it).
  const std::optional<std::vector<std::string>>& msg_id_candidates() const {
    return msg_id_candidates_;
  }

 private:
  enum class Op : uint8_t { kEq, kNe, kLt, kGt, kLte, kGte, kIn, kNin, kAll, kMod, kExists, kGlob };

  // A query value, with its instant precomputed when it is a date string.
  struct Operand {
    nlohmann::json value;
    std::optional<Micros> instant;
  };

  struct Predicate {
    Op op;
    Operand operand;                // $eq $ne $lt $gt $lte $gte; $glob pattern; $exists bool
    std::vector<Operand> operands;  // $in $nin $all; $mod [divisor, remainder]
  };

  struct Condition {
    std::string key;
    std::vector<Predicate> predicates;
  };

  class Value;  // a record value being tested (query.cc)

  static Result<Predicate> CompilePredicate(std::string_view name, const nlohmann::json& arg);
  static bool Holds(const Predicate& p, Value& v);
  void FindMsgIdCandidates();

  std::vector<Condition> conditions_;
  std::optional<std::vector<std::string>> msg_id_candidates_;
};

// Convenience: compiles `query` and evaluates it against `fields`.
Result<bool> Matches(const nlohmann::json& fields, const nlohmann::json& query);

// Python fnmatch.fnmatchcase semantics on code points of UTF-8 text: * ? [seq] [!seq],
// ranges a-z, an unterminated [ is literal, no escape character.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace shoal::store
