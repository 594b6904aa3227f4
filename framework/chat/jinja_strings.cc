#include "framework/chat/jinja_strings.h"

#include <cctype>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"
#include "framework/core/status.h"

namespace hone::jinja::internal {
namespace {

absl::Status Error(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// The code point at s[offset..offset+len).
uint32_t Decode(std::string_view s, size_t offset, size_t len) {
  const unsigned char c = static_cast<unsigned char>(s[offset]);
  if (len == 1) return c;
  uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[offset + k]) & 0x3f);
  return cp;
}

bool IsPySpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

absl::StatusOr<std::string> StringArg(const Value* v, std::string_view what) {
  if (v == nullptr || !v->is_string()) {
    return Error(absl::StrCat(std::string(what), " must be a str, not ", v == nullptr ? "nothing" : v->TypeName()));
  }
  return v->str();
}

// str.split / rsplit: runs of whitespace when sep is null (empty parts dropped).
absl::StatusOr<Value> Split(const std::string& s, const Value* sep_value, int64_t maxsplit, bool from_right) {
  List parts;
  if (sep_value == nullptr || sep_value->is_none()) {
    const std::vector<size_t> cps = CodePointOffsets(s);
    std::vector<std::pair<size_t, size_t>> words;  // byte ranges
    size_t i = 0;
    const size_t n = cps.size() - 1;
    while (i < n) {
      while (i < n && IsPySpace(Decode(s, cps[i], cps[i + 1] - cps[i]))) ++i;
      if (i >= n) break;
      size_t j = i;
      while (j < n && !IsPySpace(Decode(s, cps[j], cps[j + 1] - cps[j]))) ++j;
      words.emplace_back(cps[i], cps[j]);
      i = j;
    }
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      // Merge the surplus words back with their original text.
      if (from_right) {
        const size_t keep = words.size() - static_cast<size_t>(maxsplit);
        std::string head = s.substr(0, words[keep - 1].second);
        head = PyStrip(head, nullptr, true, false);
        parts.push_back(Value::String(head));
        for (size_t k = keep; k < words.size(); ++k) {
          parts.push_back(Value::String(s.substr(words[k].first, words[k].second - words[k].first)));
        }
      } else {
        for (int64_t k = 0; k < maxsplit; ++k) {
          parts.push_back(Value::String(s.substr(words[k].first, words[k].second - words[k].first)));
        }
        parts.push_back(Value::String(PyStrip(s.substr(words[maxsplit].first), nullptr, false, true)));
      }
      return Value::MakeList(std::move(parts));
    }
    for (const auto& [b, e] : words) parts.push_back(Value::String(s.substr(b, e - b)));
    return Value::MakeList(std::move(parts));
  }
  HONE_ASSIGN_OR_RETURN(std::string sep, StringArg(sep_value, "split separator"));
  if (sep.empty()) return Error("empty separator");
  std::vector<std::string> pieces;
  if (!from_right) {
    size_t at = 0;
    while (true) {
      const size_t hit = s.find(sep, at);
      if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) >= maxsplit)) {
        pieces.push_back(s.substr(at));
        break;
      }
      pieces.push_back(s.substr(at, hit - at));
      at = hit + sep.size();
    }
  } else {
    size_t end = s.size();
    while (true) {
      const size_t hit = end >= sep.size() ? s.rfind(sep, end - sep.size()) : std::string::npos;
      if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(pieces.size()) >= maxsplit)) {
        pieces.insert(pieces.begin(), s.substr(0, end));
        break;
      }
      pieces.insert(pieces.begin(), s.substr(hit + sep.size(), end - hit - sep.size()));
      end = hit;
    }
  }
  for (std::string& p : pieces) parts.push_back(Value::String(std::move(p)));
  return Value::MakeList(std::move(parts));
}

// Python's str.title(): a letter after a non-letter is upper-cased, others lower-cased.
std::string PyTitle(std::string_view s) {
  std::string out(s);
  bool previous_cased = false;
  for (char& c : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha) c = static_cast<char>(previous_cased ? std::tolower(c) : std::toupper(c));
    previous_cased = alpha;
  }
  return out;
}

}  // namespace

const Value* Arg(const CallArgs& args, size_t index, std::string_view name) {
  if (index < args.positional.size()) return &args.positional[index];
  for (const auto& [k, v] : args.keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

absl::Status CheckArgs(const CallArgs& args, std::string_view what, size_t max_positional,
                       std::initializer_list<std::string_view> keywords) {
  if (args.positional.size() > max_positional) {
    return Error(absl::StrCat(std::string(what), "() takes at most ", max_positional, " argument(s) (", args.positional.size(),
                              " given)"));
  }
  for (const auto& [k, unused] : args.keyword) {
    bool known = false;
    for (std::string_view allowed : keywords) known = known || allowed == k;
    if (!known) return Error(absl::StrCat(std::string(what), "() got an unexpected keyword argument '", k, "'"));
  }
  return absl::OkStatus();
}

std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right) {
  const std::vector<size_t> cps = CodePointOffsets(s);
  auto strip_here = [&](size_t i) {
    const std::string_view ch = s.substr(cps[i], cps[i + 1] - cps[i]);
    if (chars == nullptr) return IsPySpace(Decode(s, cps[i], ch.size()));
    // Membership by code point in `chars`.
    const std::vector<size_t> set = CodePointOffsets(*chars);
    for (size_t k = 0; k + 1 < set.size(); ++k) {
      if (std::string_view(*chars).substr(set[k], set[k + 1] - set[k]) == ch) return true;
    }
    return false;
  };
  size_t lo = 0, hi = cps.size() - 1;
  if (left) {
    while (lo < hi && strip_here(lo)) ++lo;
  }
  if (right) {
    while (hi > lo && strip_here(hi - 1)) --hi;
  }
  return std::string(s.substr(cps[lo], cps[hi] - cps[lo]));
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string PyCapitalize(std::string_view s) {
  std::string out = AsciiLower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

bool IsStringMethod(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "replace", "upper", "lower",
      "title", "capitalize", "find", "rfind", "count", "join", "splitlines", "isdigit", "isspace", "isalpha"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

bool IsDictMethod(std::string_view name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

absl::StatusOr<Value> CallMethod(const Value& self, const std::string& name, const CallArgs& args) {
  if (self.is_dict()) {
    if (name == "get") {
      HONE_RETURN_IF_ERROR(CheckArgs(args, "get", 2, {}));
      const Value* key = Arg(args, 0, "");
      if (key == nullptr) return Error("get() takes at least 1 argument");
      const Value* def = Arg(args, 1, "");
      const Value* found = key->is_string() ? self.dict().Find(key->str()) : nullptr;
      return found != nullptr ? *found : def != nullptr ? *def : Value::None();
    }
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 0, {}));
    List out;
    for (const auto& [k, v] : self.dict().entries) {
      if (name == "items") out.push_back(Value::MakeTuple({Value::String(k), v}));
      if (name == "keys") out.push_back(Value::String(k));
      if (name == "values") out.push_back(v);
    }
    return Value::MakeList(std::move(out));
  }
  const std::string& s = self.str();
  if (name == "startswith" || name == "endswith") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 1, {}));
    const Value* arg = Arg(args, 0, "");
    List candidates;
    if (arg != nullptr && arg->is_list()) {
      candidates = arg->list();
    } else if (arg != nullptr) {
      candidates.push_back(*arg);
    }
    if (candidates.empty() && arg == nullptr) return Error(absl::StrCat(name, "() takes exactly one argument"));
    for (const Value& c : candidates) {
      HONE_ASSIGN_OR_RETURN(std::string affix, StringArg(&c, name));
      const bool hit = name == "startswith"
                           ? s.compare(0, affix.size(), affix) == 0
                           : s.size() >= affix.size() && s.compare(s.size() - affix.size(), affix.size(), affix) == 0;
      if (hit) return Value::Bool(true);
    }
    return Value::Bool(false);
  }
  if (name == "split" || name == "rsplit") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 2, {"sep", "maxsplit"}));
    const Value* maxsplit = Arg(args, 1, "maxsplit");
    if (maxsplit != nullptr && maxsplit->kind() != Value::Kind::kInt) return Error("maxsplit must be an int");
    return Split(s, Arg(args, 0, "sep"), maxsplit == nullptr ? -1 : maxsplit->int_value(), name == "rsplit");
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 1, {}));
    const Value* chars = Arg(args, 0, "");
    std::string chars_text;
    if (chars != nullptr && !chars->is_none()) {
      HONE_ASSIGN_OR_RETURN(chars_text, StringArg(chars, name));
    }
    const bool given = chars != nullptr && !chars->is_none();
    return Value::String(PyStrip(s, given ? &chars_text : nullptr, name != "rstrip", name != "lstrip"));
  }
  if (name == "replace") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 3, {}));
    HONE_ASSIGN_OR_RETURN(std::string from, StringArg(Arg(args, 0, ""), "replace() argument 1"));
    HONE_ASSIGN_OR_RETURN(std::string to, StringArg(Arg(args, 1, ""), "replace() argument 2"));
    const Value* count_value = Arg(args, 2, "");
    int64_t count = count_value != nullptr && count_value->kind() == Value::Kind::kInt ? count_value->int_value() : -1;
    return Value::String(ReplaceAll(s, from, to, count));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "splitlines" ||
      name == "isdigit" || name == "isspace" || name == "isalpha") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 0, {}));
    if (name == "upper") return Value::String(AsciiUpper(s));
    if (name == "lower") return Value::String(AsciiLower(s));
    if (name == "title") return Value::String(PyTitle(s));
    if (name == "capitalize") return Value::String(PyCapitalize(s));
    if (name == "splitlines") {
      List lines;
      size_t at = 0;
      while (at < s.size()) {
        size_t nl = s.find_first_of("\r\n", at);
        if (nl == std::string::npos) {
          lines.push_back(Value::String(s.substr(at)));
          break;
        }
        lines.push_back(Value::String(s.substr(at, nl - at)));
        at = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
      }
      return Value::MakeList(std::move(lines));
    }
    bool all = !s.empty();
    for (unsigned char c : s) {
      all = all && (name == "isdigit" ? std::isdigit(c) : name == "isspace" ? std::isspace(c) : std::isalpha(c));
    }
    return Value::Bool(all);
  }
  if (name == "find" || name == "rfind" || name == "count") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 1, {}));
    HONE_ASSIGN_OR_RETURN(std::string needle, StringArg(Arg(args, 0, ""), name));
    if (name == "count") {
      if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePointOffsets(s).size()));
      int64_t n = 0;
      for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
      return Value::Int(n);
    }
    const size_t at = name == "find" ? s.find(needle) : s.rfind(needle);
    if (at == std::string::npos) return Value::Int(-1);
    return Value::Int(static_cast<int64_t>(CodePointOffsets(s.substr(0, at)).size()) - 1);
  }
  if (name == "join") {
    HONE_RETURN_IF_ERROR(CheckArgs(args, name, 1, {}));
    const Value* items = Arg(args, 0, "");
    if (items == nullptr) return Error("join() takes exactly one argument");
    HONE_ASSIGN_OR_RETURN(List list, Iterate(*items));
    std::string out;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string()) {
        return Error(absl::StrCat("sequence item ", i, ": expected str instance, ", list[i].TypeName(), " found"));
      }
      if (i > 0) out += s;
      out += list[i].str();
    }
    return Value::String(std::move(out));
  }
  return Error(absl::StrCat("'str' object has no method '", name, "'"));
}

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) {
    // Python inserts `to` between every character (and at both ends).
    const std::vector<size_t> cps = CodePointOffsets(s);
    std::string out;
    for (size_t i = 0; i + 1 < cps.size(); ++i) {
      if (count < 0 || static_cast<int64_t>(i) < count) out += to;
      out.append(s, cps[i], cps[i + 1] - cps[i]);
    }
    if (count < 0 || static_cast<int64_t>(cps.size()) - 1 < count) out += to;
    return out;
  }
  std::string out;
  size_t at = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t hit = s.find(from, at);
    if (hit == std::string::npos) break;
    out.append(s, at, hit - at);
    out += to;
    at = hit + from.size();
  }
  out.append(s, at, std::string::npos);
  return out;
}

absl::StatusOr<Value> FormatPercent(const std::string& format, const Value& args, size_t max_bytes) {
  List values = args.is_tuple() ? args.list() : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) return Error("incomplete format");
    const char spec = format[i];
    if (spec == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) return Error("not enough arguments for format string");
    const Value& v = values[next++];
    switch (spec) {
      case 's': out += v.ToString(); break;
      case 'r': out += v.Repr(); break;
      case 'd':
      case 'i':
        if (!v.is_number()) return Error(absl::StrCat("%", std::string(1, spec), " format: a real number is required, not ", v.TypeName()));
        out += std::to_string(v.kind() == Value::Kind::kFloat ? static_cast<int64_t>(v.AsDouble()) : v.int_value());
        break;
      case 'f': {
        if (!v.is_number()) return Error(absl::StrCat("%f format: a real number is required, not ", v.TypeName()));
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6f", v.AsDouble());
        out += buf;
        break;
      }
      default: return Error(absl::StrCat("unsupported format character '", std::string(1, spec), "'"));
    }
    if (out.size() > max_bytes) return Error("string too long");
  }
  if (next < values.size()) return Error("not all arguments converted during string formatting");
  return Value::String(std::move(out));
}

}  // namespace hone::jinja::internal
