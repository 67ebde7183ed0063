#include "shoal/store/query.h"

#include <cmath>
#include <limits>
#include <utility>

#include "shoal/wire/iso_date.h"

namespace shoal::store {

using Json = nlohmann::json;

namespace {

std::optional<Micros> InstantOf(const Json& v) {
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  if (!wire::LooksLikeIsoDate(s)) return std::nullopt;
  auto parsed = wire::ParseIsoDate(s);
  if (!parsed.ok()) return std::nullopt;  // e.g. month 13: compare as a plain string
  return *parsed;
}

template <typename T>
int Sign(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Numeric order of two JSON numbers without losing precision on large integers; nullopt for
// NaN, which has no order.
std::optional<int> CompareNumbers(const Json& a, const Json& b) {
  if (a.is_number_float() || b.is_number_float()) {
    double x = a.get<double>(), y = b.get<double>();
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return Sign(x, y);
  }
  const bool a_neg = !a.is_number_unsigned() && a.get<int64_t>() < 0;
  const bool b_neg = !b.is_number_unsigned() && b.get<int64_t>() < 0;
  if (a_neg && b_neg) return Sign(a.get<int64_t>(), b.get<int64_t>());
  if (a_neg != b_neg) return a_neg ? -1 : 1;
  return Sign(a.get<uint64_t>(), b.get<uint64_t>());
}

// Python's `a % d` (the result takes the divisor's sign), as a JSON number.
std::optional<Json> PythonMod(const Json& a, const Json& d) {
  const bool ints = a.is_number_integer() && d.is_number_integer() && !a.is_number_unsigned() &&
                    !d.is_number_unsigned();
  if (ints) {
    int64_t x = a.get<int64_t>(), y = d.get<int64_t>();
    if (y == 0) return std::nullopt;
    if (y == -1) return Json(0);  // avoids INT64_MIN % -1
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Json(r);
  }
  double x = a.get<double>(), y = d.get<double>();
  if (y == 0 || std::isnan(x) || std::isinf(x)) return std::nullopt;
  double r = std::fmod(x, y);
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return Json(r);
}

// ---- glob -----------------------------------------------------------------------------------

// Decodes UTF-8 into code points; an invalid byte b becomes U+DC00+b (Python's
// surrogateescape), so every input has a decoding.
std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; ok && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      out.push_back(0xDC00 + c);
      i += 1;
    }
  }
  return out;
}

struct GlobToken {
  enum Kind { kLiteral, kAny, kStar, kSet };
  explicit GlobToken(Kind k, char32_t c = 0) : kind(k), ch(c) {}

  Kind kind;
  char32_t ch;
  bool negate = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive

  bool Matches(char32_t c) const {
    switch (kind) {
      case kLiteral:
        return c == ch;
      case kAny:
        return true;
      case kSet: {
        bool in = false;
        for (const auto& [lo, hi] : ranges) in = in || (lo <= c && c <= hi);
        return in != negate;
      }
      case kStar:
        break;
    }
    return false;
  }
};

// Builds the set for pat[i, j) (the text between '[' and ']') the way Python's
// fnmatch.translate does: '-' between two characters is a range unless it is the first
// character (after '!'); empty ranges (z-a) are dropped with their endpoints; a leading '!'
// negates.
GlobToken ParseSet(const std::u32string& pat, size_t i, size_t j) {
  // Chunks are runs of literal characters; consecutive chunks are joined by a range dash.
  std::vector<std::u32string> chunks;
  bool has_dash = false;
  for (size_t k = i; k < j; ++k) has_dash = has_dash || pat[k] == U'-';
  if (!has_dash) {
    chunks.emplace_back(pat.substr(i, j - i));
  } else {
    size_t k = pat[i] == U'!' ? i + 2 : i + 1;
    while (true) {
      size_t dash = std::u32string::npos;
      for (size_t m = k; m < j; ++m) {
        if (pat[m] == U'-') {
          dash = m;
          break;
        }
      }
      if (dash == std::u32string::npos) break;
      chunks.emplace_back(pat.substr(i, dash - i));
      i = dash + 1;
      k = dash + 3;
    }
    if (i < j) {
      chunks.emplace_back(pat.substr(i, j - i));
    } else {
      chunks.back() += U'-';
    }
    for (size_t k2 = chunks.size() - 1; k2 > 0; --k2) {
      if (chunks[k2 - 1].back() > chunks[k2].front()) {
        chunks[k2 - 1] = chunks[k2 - 1].substr(0, chunks[k2 - 1].size() - 1) + chunks[k2].substr(1);
        chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(k2));
      }
    }
  }
  // Flatten into characters with range dashes marked by 0xFFFFFFFF (not a code point).
  constexpr char32_t kDash = 0xFFFFFFFF;
  std::u32string flat;
  for (size_t k = 0; k < chunks.size(); ++k) {
    if (k > 0) flat += kDash;
    flat += chunks[k];
  }
  GlobToken tok(GlobToken::kSet);
  size_t p = 0;
  if (!flat.empty() && flat[0] == U'!') {
    tok.negate = true;
    p = 1;
  }
  while (p < flat.size()) {
    char32_t c = flat[p] == kDash ? U'-' : flat[p];
    if (p + 2 < flat.size() && flat[p + 1] == kDash && flat[p + 2] != kDash) {
      tok.ranges.emplace_back(c, flat[p + 2]);
      p += 3;
    } else {
      tok.ranges.emplace_back(c, c);
      p += 1;
    }
  }
  return tok;
}

std::vector<GlobToken> ParseGlob(const std::u32string& pat) {
  std::vector<GlobToken> toks;
  size_t i = 0, n = pat.size();
  while (i < n) {
    char32_t c = pat[i++];
    if (c == U'*') {
      if (toks.empty() || toks.back().kind != GlobToken::kStar) toks.emplace_back(GlobToken::kStar);
    } else if (c == U'?') {
      toks.emplace_back(GlobToken::kAny);
    } else if (c == U'[') {
      size_t j = i;
      if (j < n && pat[j] == U'!') ++j;
      if (j < n && pat[j] == U']') ++j;
      while (j < n && pat[j] != U']') ++j;
      if (j >= n) {
        toks.emplace_back(GlobToken::kLiteral, U'[');
      } else {
        toks.push_back(ParseSet(pat, i, j));
        i = j + 1;
      }
    } else {
      toks.emplace_back(GlobToken::kLiteral, c);
    }
  }
  return toks;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  const std::vector<GlobToken> toks = ParseGlob(DecodeUtf8(pattern));
  const std::u32string t = DecodeUtf8(text);
  // Greedy match that backtracks only to the most recent star: linear in practice, O(n*m)
  // at worst, never exponential.
  size_t p = 0, i = 0, star = std::string::npos, star_i = 0;
  while (i < t.size()) {
    if (p < toks.size() && toks[p].kind == GlobToken::kStar) {
      star = p++;
      star_i = i;
    } else if (p < toks.size() && toks[p].Matches(t[i])) {
      ++p;
      ++i;
    } else if (star != std::string::npos) {
      p = star + 1;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (p < toks.size() && toks[p].kind == GlobToken::kStar) ++p;
  return p == toks.size();
}

// ---- evaluation -----------------------------------------------------------------------------

// A record value under test. Null and missing are the same; the instant of a date string is
// parsed at most once per condition, however many predicates need it.
class Query::Value {
 public:
  explicit Value(const Json* v) : v_(v != nullptr && !v->is_null() ? v : nullptr) {}

  const Json* get() const { return v_; }

  const std::optional<Micros>& instant() {
    if (!instant_done_) {
      instant_done_ = true;
      if (v_ != nullptr) instant_ = InstantOf(*v_);
    }
    return instant_;
  }

  bool Equals(const Operand& o) {
    if (o.value.is_null()) return v_ == nullptr;
    if (v_ == nullptr) return false;
    if (o.instant && instant()) return *o.instant == *instant();
    return *v_ == o.value;
  }

  // nullopt when the two have no common order (the predicate then does not hold).
  std::optional<int> CompareTo(const Operand& o) {
    if (v_ == nullptr) return std::nullopt;
    if (o.instant && instant()) return Sign(*instant(), *o.instant);
    if (v_->is_string() && o.value.is_string()) {
      int c = v_->get_ref<const std::string&>().compare(o.value.get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (v_->is_number() && o.value.is_number()) return CompareNumbers(*v_, o.value);
    return std::nullopt;
  }

 private:
  const Json* v_;
  bool instant_done_ = false;
  std::optional<Micros> instant_;
};

namespace {

Result<std::vector<Json>> RequireArray(std::string_view op, const Json& arg) {
  if (!arg.is_array())
    return Status::InvalidArgument("query operator " + std::string(op) + " needs an array, got " +
                                   arg.dump());
  return arg.get<std::vector<Json>>();
}

}  // namespace

Result<Query::Predicate> Query::CompilePredicate(std::string_view name, const Json& arg) {
  static constexpr std::pair<std::string_view, Op> kOps[] = {
      {"$eq", Op::kEq},   {"$ne", Op::kNe},   {"$lt", Op::kLt},         {"$gt", Op::kGt},
      {"$lte", Op::kLte}, {"$gte", Op::kGte}, {"$in", Op::kIn},         {"$nin", Op::kNin},
      {"$all", Op::kAll}, {"$mod", Op::kMod}, {"$exists", Op::kExists}, {"$glob", Op::kGlob}};
  std::optional<Op> op;
  for (const auto& [n, o] : kOps)
    if (n == name) op = o;
  if (!op) return Status::InvalidArgument("unknown query operator '" + std::string(name) + "'");

  Predicate p{*op, {}, {}};
  auto operand = [](const Json& v) { return Operand{v, InstantOf(v)}; };
  switch (*op) {
    case Op::kIn:
    case Op::kNin:
    case Op::kAll: {
      SHOAL_ASSIGN_OR_RETURN(auto items, RequireArray(name, arg));
      for (const Json& item : items) p.operands.push_back(operand(item));
      break;
    }
    case Op::kMod: {
      SHOAL_ASSIGN_OR_RETURN(auto items, RequireArray(name, arg));
      if (items.size() != 2 || !items[0].is_number() || !items[1].is_number() ||
          (CompareNumbers(items[0], Json(0)) == 0))
        return Status::InvalidArgument(
            "query operator $mod needs [divisor, remainder] with a "
            "non-zero divisor, got " +
            arg.dump());
      for (const Json& item : items) p.operands.push_back(operand(item));
      break;
    }
    case Op::kExists:
      if (!arg.is_boolean())
        return Status::InvalidArgument("query operator $exists needs true or false, got " +
                                       arg.dump());
      p.operand = operand(arg);
      break;
    case Op::kGlob:
      if (!arg.is_string())
        return Status::InvalidArgument("query operator $glob needs a string pattern, got " +
                                       arg.dump());
      p.operand = Operand{arg, std::nullopt};  // a pattern, never a date
      break;
    default:
      p.operand = operand(arg);
  }
  return p;
}

Result<Query> Query::Compile(const Json& query) {
  if (!query.is_object())
    return Status::InvalidArgument("a query must be a JSON object, got " + query.dump());
  Query q;
  for (const auto& [key, value] : query.items()) {
    Condition c{key, {}};
    if (value.is_object()) {
      for (const auto& [name, arg] : value.items()) {
        SHOAL_ASSIGN_OR_RETURN(Predicate p, CompilePredicate(name, arg));
        c.predicates.push_back(std::move(p));
      }
    } else {
      c.predicates.push_back(Predicate{Op::kEq, Operand{value, InstantOf(value)}, {}});
    }
    q.conditions_.push_back(std::move(c));
  }
  q.FindMsgIdCandidates();
  return q;
}

void Query::FindMsgIdCandidates() {
  for (const Condition& c : conditions_) {
    if (c.key != "msg_id") continue;
    for (const Predicate& p : c.predicates) {
      if (p.op == Op::kEq && p.operand.value.is_string()) {
        msg_id_candidates_ = std::vector<std::string>{p.operand.value.get<std::string>()};
        return;
      }
      if (p.op == Op::kIn) {
        std::vector<std::string> ids;
        for (const Operand& o : p.operands) {
          // A non-string cannot equal a msg_id, which is always a string.
          if (o.value.is_string()) ids.push_back(o.value.get<std::string>());
        }
        msg_id_candidates_ = std::move(ids);
        return;
      }
    }
  }
}

bool Query::Holds(const Predicate& p, Value& v) {
  switch (p.op) {
    case Op::kEq:
      return v.Equals(p.operand);
    case Op::kNe:
      return !v.Equals(p.operand);
    case Op::kLt: {
      auto c = v.CompareTo(p.operand);
      return c && *c < 0;
    }
    case Op::kGt: {
      auto c = v.CompareTo(p.operand);
      return c && *c > 0;
    }
    case Op::kLte: {
      auto c = v.CompareTo(p.operand);
      return c && *c <= 0;
    }
    case Op::kGte: {
      auto c = v.CompareTo(p.operand);
      return c && *c >= 0;
    }
    case Op::kIn:
      for (const Operand& o : p.operands)
        if (v.Equals(o)) return true;
      return false;
    case Op::kNin:
      for (const Operand& o : p.operands)
        if (v.Equals(o)) return false;
      return true;
    case Op::kAll: {
      if (v.get() == nullptr || p.operands.empty()) return false;
      for (const Operand& o : p.operands) {
        bool found = false;
        if (v.get()->is_array()) {
          for (const Json& element : *v.get()) {
            Value ev(&element);
            if (ev.Equals(o)) {
              found = true;
              break;
            }
          }
        } else {
          found = v.Equals(o);
        }
        if (!found) return false;
      }
      return true;
    }
    case Op::kMod: {
      if (v.get() == nullptr || !v.get()->is_number()) return false;
      auto r = PythonMod(*v.get(), p.operands[0].value);
      return r && CompareNumbers(*r, p.operands[1].value) == 0;
    }
    case Op::kExists:
      return (v.get() != nullptr) == p.operand.value.get<bool>();
    case Op::kGlob:
      return v.get() != nullptr && v.get()->is_string() &&
             GlobMatch(p.operand.value.get_ref<const std::string&>(),
                       v.get()->get_ref<const std::string&>());
  }
  return false;
}

bool Query::Matches(const Json& fields) const {
  for (const Condition& c : conditions_) {
    const Json* raw = nullptr;
    if (fields.is_object()) {
      auto it = fields.find(c.key);
      if (it != fields.end()) raw = &*it;
    }
    Value v(raw);
    for (const Predicate& p : c.predicates)
      if (!Holds(p, v)) return false;
  }
  return true;
}

Result<bool> Matches(const Json& fields, const Json& query) {
  SHOAL_ASSIGN_OR_RETURN(Query q, Query::Compile(query));
  return q.Matches(fields);
}

}  // namespace shoal::store
