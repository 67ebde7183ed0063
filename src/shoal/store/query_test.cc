#include "shoal/store/query.h"

#include <gtest/gtest.h>

#include <string>

namespace shoal::store {
namespace {

using Json = nlohmann::json;

// One record, queried by every case below.
const Json& Record() {
  static const Json r = Json::parse(R"({
    "msg_id": "m-1",
    "engine_uuid": "eng-a",
    "queue": "task",
    "submitted": "2026-01-01T00:00:10Z",
    "started": "2026-01-01T00:00:10.250000Z",
    "completed": null,
    "stdout": "hello world",
    "content": {"a": 5},
    "label": 7,
    "ratio": 2.5,
    "neg": -7,
    "big": 18446744073709551615,
    "flag": true,
    "tags": ["x", "y", "z"]
  })");
  return r;
}

struct MatchCase {
  const char* name;
  const char* query;
  bool expected;
};

class MatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchTest, Evaluates) {
  const MatchCase& c = GetParam();
  auto result = Matches(Record(), Json::parse(c.query));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, c.expected) << c.query;
}

const MatchCase kMatchCases[] = {
    {"Empty", R"({})", true},
    // Literals.
    {"LiteralString", R"({"queue": "task"})", true},
    {"LiteralStringMismatch", R"({"queue": "mux"})", false},
    {"LiteralNumberAcrossTypes", R"({"label": 7.0})", true},
    {"LiteralObject", R"({"content": {"$eq": {"a": 5}}})", true},
    {"LiteralArray", R"({"tags": ["x", "y", "z"]})", true},
    {"NullMatchesNull", R"({"completed": null})", true},
    {"NullMatchesMissing", R"({"resubmitted": null})", true},
    {"NullDoesNotMatchValue", R"({"msg_id": null})", false},
    {"BoolIsNotNumber", R"({"flag": 1})", false},
    {"AndAllHold", R"({"queue": "task", "label": 7})", true},
    {"AndOneFails", R"({"queue": "task", "label": 8})", false},
    // $eq / $ne.
    {"EqString", R"({"engine_uuid": {"$eq": "eng-a"}})", true},
    {"NeString", R"({"queue": {"$ne": "mux"}})", true},
    {"NeSameString", R"({"queue": {"$ne": "task"}})", false},
    {"NeNullOnValue", R"({"msg_id": {"$ne": null}})", true},
    {"NeNullOnNull", R"({"completed": {"$ne": null}})", false},
    {"NeNullOnMissing", R"({"resubmitted": {"$ne": null}})", false},
    {"NeMismatchedType", R"({"label": {"$ne": "7"}})", true},
    // Numeric order.
    {"GtBelow", R"({"label": {"$gt": 6}})", true},
    {"GtEqual", R"({"label": {"$gt": 7}})", false},
    {"GtAbove", R"({"label": {"$gt": 100}})", false},  // upstream DictDB says true here
    {"GteEqual", R"({"label": {"$gte": 7}})", true},
    {"LtEqual", R"({"label": {"$lt": 7}})", false},
    {"LtAbove", R"({"label": {"$lt": 7.5}})", true},
    {"LteEqual", R"({"label": {"$lte": 7}})", true},
    {"FloatVsInt", R"({"ratio": {"$gt": 2, "$lt": 3}})", true},
    {"NegativeVsUnsigned", R"({"neg": {"$lt": 18446744073709551615}})", true},
    {"HugeUnsigned", R"({"big": {"$gt": 9223372036854775807}})", true},
    // String order.
    {"StringGt", R"({"queue": {"$gt": "mux"}})", true},
    {"StringLt", R"({"queue": {"$lt": "mux"}})", false},
    {"StringPrefixLess", R"({"stdout": {"$gt": "hello"}})", true},
    // Mismatched types never order.
    {"NumberVsString", R"({"label": {"$gt": "a"}})", false},
    {"StringVsNumber", R"({"queue": {"$lt": 5}})", false},
    {"NullNeverOrders", R"({"completed": {"$lt": "2099-01-01T00:00:00Z"}})", false},
    {"MissingNeverOrders", R"({"received": {"$gte": 0}})", false},
    {"BoolNeverOrders", R"({"flag": {"$gte": 0}})", false},
    {"ObjectNeverOrders", R"({"content": {"$gte": {"a": 1}}})", false},
    {"DateVsNumber", R"({"label": {"$lt": "2099-01-01T00:00:00Z"}})", false},
    // Dates compare as instants.
    {"DateGt", R"({"submitted": {"$gt": "2026-01-01T00:00:05Z"}})", true},
    {"DateLt", R"({"submitted": {"$lt": "2026-01-01T00:00:05Z"}})", false},
    {"DateRange",
     R"({"submitted": {"$gte": "2026-01-01T00:00:00Z", "$lt": "2026-01-01T00:01:00Z"}})", true},
    {"DateRangeExclusiveEnd",
     R"({"submitted": {"$gte": "2026-01-01T00:00:00Z", "$lt": "2026-01-01T00:00:10Z"}})", false},
    {"DateEqualAcrossOffsets", R"({"submitted": "2026-01-01T01:00:10+01:00"})", true},
    {"DateEqualWithFraction", R"({"submitted": {"$eq": "2026-01-01T00:00:10.000000Z"}})", true},
    {"DateNeAcrossOffsets", R"({"submitted": {"$ne": "2026-01-01T01:00:10+01:00"}})", false},
    // As text "…10Z" sorts after "…10.5Z"; as instants it is earlier.
    {"DateNotLexicographic", R"({"submitted": {"$lt": "2026-01-01T00:00:10.5Z"}})", true},
    {"DateFraction", R"({"started": {"$gt": "2026-01-01T00:00:10.2Z"}})", true},
    {"DateInList", R"({"submitted": {"$in": ["2026-01-01T02:00:10+02:00"]}})", true},
    {"DateVsPlainString", R"({"queue": {"$eq": "2026-01-01T00:00:10Z"}})", false},
    // $in / $nin.
    {"InHit", R"({"msg_id": {"$in": ["m-0", "m-1"]}})", true},
    {"InMiss", R"({"msg_id": {"$in": ["m-0", "m-2"]}})", false},
    {"InEmpty", R"({"msg_id": {"$in": []}})", false},
    {"InNullMatchesMissing", R"({"resubmitted": {"$in": [null, "x"]}})", true},
    {"InNumbers", R"({"label": {"$in": [1, 7.0]}})", true},
    {"NinHit", R"({"msg_id": {"$nin": ["m-0", "m-1"]}})", false},
    {"NinMiss", R"({"msg_id": {"$nin": ["m-0"]}})", true},
    {"NinEmpty", R"({"msg_id": {"$nin": []}})", true},
    // $all.
    {"AllSubset", R"({"tags": {"$all": ["z", "x"]}})", true},
    {"AllMissingElement", R"({"tags": {"$all": ["x", "w"]}})", false},
    {"AllScalar", R"({"queue": {"$all": ["task"]}})", true},
    {"AllScalarMismatch", R"({"queue": {"$all": ["task", "mux"]}})", false},
    {"AllEmptyMatchesNothing", R"({"tags": {"$all": []}})", false},
    {"AllOnNull", R"({"completed": {"$all": [null]}})", false},
    // $mod (Python's sign rules).
    {"ModHit", R"({"label": {"$mod": [3, 1]}})", true},
    {"ModMiss", R"({"label": {"$mod": [3, 2]}})", false},
    {"ModNegative", R"({"neg": {"$mod": [3, 2]}})", true},
    {"ModNegativeDivisor", R"({"label": {"$mod": [-3, -2]}})", true},
    {"ModFloat", R"({"ratio": {"$mod": [2, 0.5]}})", true},
    {"ModOnString", R"({"queue": {"$mod": [2, 0]}})", false},
    {"ModOnMissing", R"({"received": {"$mod": [2, 0]}})", false},
    // $exists.
    {"ExistsTrueOnValue", R"({"msg_id": {"$exists": true}})", true},
    {"ExistsTrueOnNull", R"({"completed": {"$exists": true}})", false},
    {"ExistsFalseOnNull", R"({"completed": {"$exists": false}})", true},
    {"ExistsFalseOnMissing", R"({"resubmitted": {"$exists": false}})", true},
    {"ExistsFalseOnValue", R"({"msg_id": {"$exists": false}})", false},
    // $glob.
    {"GlobStar", R"({"stdout": {"$glob": "hello*"}})", true},
    {"GlobQuestion", R"({"stdout": {"$glob": "h?llo world"}})", true},
    {"GlobSet", R"({"stdout": {"$glob": "[a-h]ello*"}})", true},
    {"GlobNegatedSet", R"({"stdout": {"$glob": "[!h]*"}})", false},
    {"GlobCaseSensitive", R"({"stdout": {"$glob": "Hello*"}})", false},
    {"GlobWholeString", R"({"stdout": {"$glob": "hello"}})", false},
    {"GlobOnNumber", R"({"label": {"$glob": "*"}})", false},
    {"GlobOnNull", R"({"completed": {"$glob": "*"}})", false},
    // Several operators on one key.
    {"OperatorsAnded", R"({"label": {"$gt": 1, "$lt": 10, "$ne": 7}})", false},
    {"EmptyOperatorObject", R"({"label": {}})", true},
};

INSTANTIATE_TEST_SUITE_P(Query, MatchTest, ::testing::ValuesIn(kMatchCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct InvalidCase {
  const char* name;
  const char* query;
};

class InvalidQueryTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidQueryTest, IsInvalidArgument) {
  auto result = Query::Compile(Json::parse(GetParam().query));
  ASSERT_FALSE(result.ok()) << GetParam().query;
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(result.status().message().empty());
}

const InvalidCase kInvalidCases[] = {
    {"Array", R"([])"},
    {"String", R"("msg_id")"},
    {"Null", R"(null)"},
    {"UnknownOperator", R"({"msg_id": {"$regex": "m.*"}})"},
    {"NotAnOperator", R"({"header": {"msg_id": "m-1"}})"},
    {"OperatorCase", R"({"label": {"$GT": 1}})"},
    {"InNotArray", R"({"msg_id": {"$in": "m-1"}})"},
    {"NinNotArray", R"({"msg_id": {"$nin": 3}})"},
    {"AllNotArray", R"({"tags": {"$all": "x"}})"},
    {"ModZeroDivisor", R"({"label": {"$mod": [0, 1]}})"},
    {"ModOneElement", R"({"label": {"$mod": [3]}})"},
    {"ModNotNumbers", R"({"label": {"$mod": ["3", 1]}})"},
    {"ModNotArray", R"({"label": {"$mod": 3}})"},
    {"ExistsNotBool", R"({"label": {"$exists": 1}})"},
    {"GlobNotString", R"({"stdout": {"$glob": 5}})"},
    {"BadOperatorAfterGoodOne", R"({"label": {"$gt": 1, "$near": 2}})"},
};

INSTANTIATE_TEST_SUITE_P(Query, InvalidQueryTest, ::testing::ValuesIn(kInvalidCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct GlobCase {
  const char* pattern;
  const char* text;
  bool expected;  // what Python's fnmatch.fnmatchcase says
};

TEST(GlobMatchTest, AgreesWithPythonFnmatch) {
  const GlobCase cases[] = {
      {"*", "", true},
      {"*", "abc", true},
      {"a*c", "abbbc", true},
      {"a*c", "abcd", false},
      {"?", "\xc3\xa9", true},  // one code point, two bytes
      {"??", "\xc3\xa9", false},
      {"a?c", "a/c", true},
      {"*.txt", "dir/file.txt", true},
      {"[abc]", "b", true},
      {"[abc]", "d", false},
      {"[!abc]", "d", true},
      {"[!abc]", "a", false},
      {"[a-c]x", "bx", true},
      {"[z-a]", "m", false},
      {"[z-a]", "z", false},
      {"[]]", "]", true},
      {"[!]]", "a", true},
      {"[!]]", "]", false},
      {"[", "[", true},
      {"[a", "[a", true},
      {"a[", "a[", true},
      {"[!]", "[!]", true},
      {"[a-]", "-", true},
      {"[-a]", "-", true},
      {"[!-#]", "-", false},
      {"[!-#]", "$", true},
      {"[a-c-e]", "-", true},
      {"[a-c-e]", "d", false},
      {"[a-c-e]", "e", true},
      {"\\*", "\\x", true},
      {"[\\]", "\\", true},
      {"a**b", "ab", true},
      {"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
      {"hello", "Hello", false},
      {"*\n*", "a\nb", true},
      {"[^a]", "^", true},
      {"[^a]", "b", false},
      {"caf[\xc3\xa9]", "caf\xc3\xa9", true},
  };
  for (const GlobCase& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.expected)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

TEST(QueryTest, MsgIdCandidates) {
  auto literal = Query::Compile(Json::parse(R"({"msg_id": "a", "queue": "task"})"));
  ASSERT_TRUE(literal.ok());
  ASSERT_TRUE(literal->msg_id_candidates().has_value());
  EXPECT_EQ(*literal->msg_id_candidates(), std::vector<std::string>{"a"});

  auto in = Query::Compile(Json::parse(R"({"msg_id": {"$in": ["a", "b", 3]}})"));
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(in->msg_id_candidates().has_value());
  EXPECT_EQ(*in->msg_id_candidates(), (std::vector<std::string>{"a", "b"}));

  for (const char* q :
       {R"({"msg_id": {"$ne": "a"}})", R"({"queue": "task"})", R"({})", R"({"msg_id": null})"}) {
    auto scan = Query::Compile(Json::parse(q));
    ASSERT_TRUE(scan.ok());
    EXPECT_FALSE(scan->msg_id_candidates().has_value()) << q;
  }
}

TEST(QueryTest, NonObjectFieldsReadAsAllNull) {
  auto q = Query::Compile(Json::parse(R"({"msg_id": null})"));
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->Matches(Json()));
  EXPECT_TRUE(q->Matches(Json::object()));
}

}  // namespace
}  // namespace shoal::store
