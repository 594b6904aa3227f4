// Filters, tests and global functions of the Jinja2 interpreter. tojson is the one
// transformers installs for chat templates: json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False), no HTML escaping.
#include <algorithm>
#include <cmath>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"
#include "framework/chat/jinja_strings.h"
#include "framework/core/status.h"

namespace hone::jinja::internal {
namespace {

absl::Status Error(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

absl::StatusOr<int64_t> Length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<int64_t>(CodePointOffsets(v.str()).size()) - 1;
    case Value::Kind::kList: return static_cast<int64_t>(v.list().size());
    case Value::Kind::kDict: return static_cast<int64_t>(v.dict().entries.size());
    default: return Error(absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
  }
}

absl::StatusOr<Value> ToJson(const Value& input, const CallArgs& args) {
  HONE_RETURN_IF_ERROR(CheckArgs(args, "tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  Value::JsonOptions o;
  if (const Value* v = Arg(args, 0, "ensure_ascii")) o.ensure_ascii = v->Truthy();
  if (const Value* v = Arg(args, 1, "indent"); v != nullptr && !v->is_none()) {
    if (v->is_string()) {
      o.indent = -2;
      o.indent_text = v->str();
    } else if (v->kind() == Value::Kind::kInt) {
      o.indent = static_cast<int>(std::clamp<int64_t>(v->int_value(), 0, 64));
    } else {
      return Error("tojson: indent must be an int or a str");
    }
    o.item_separator = ",";
  }
  if (const Value* v = Arg(args, 2, "separators"); v != nullptr && !v->is_none()) {
    if (!v->is_list() || v->list().size() != 2 || !v->list()[0].is_string() || !v->list()[1].is_string()) {
      return Error("tojson: separators must be a pair of strings");
    }
    o.item_separator = v->list()[0].str();
    o.key_separator = v->list()[1].str();
  }
  if (const Value* v = Arg(args, 3, "sort_keys")) o.sort_keys = v->Truthy();
  HONE_ASSIGN_OR_RETURN(std::string text, input.ToJson(o));
  return Value::String(std::move(text));
}

// Sort key: strings lower-cased unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive, const std::string* attribute) {
  Value key = v;
  if (attribute != nullptr) {
    absl::StatusOr<Value> a = GetAttr(v, *attribute);
    key = a.ok() ? *a : Value();
  }
  if (!case_sensitive && key.is_string()) return Value::String(AsciiLower(key.str()));
  return key;
}

absl::StatusOr<List> SortList(List items, bool reverse, bool case_sensitive, const std::string* attribute) {
  absl::Status error;
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    absl::StatusOr<bool> less = reverse ? Less(SortKey(b, case_sensitive, attribute), SortKey(a, case_sensitive, attribute))
                                        : Less(SortKey(a, case_sensitive, attribute), SortKey(b, case_sensitive, attribute));
    if (!less.ok()) {
      if (error.ok()) error = less.status();
      return false;
    }
    return *less;
  });
  if (!error.ok()) return error;
  return items;
}

// select/reject/selectattr/rejectattr: keep items whose test (or truthiness) is `keep`.
absl::StatusOr<Value> Select(const Value& input, const CallArgs& args, bool keep, bool by_attribute) {
  HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) return Error("selectattr: attribute name expected");
    attribute = args.positional[0].str();
    next = 1;
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return Error("select: test name expected");
    test = args.positional[next++].str();
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, args.positional.size())),
                              args.positional.end());
  List out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attribute) {
      HONE_ASSIGN_OR_RETURN(subject, GetAttr(item, attribute));
    }
    bool pass = subject.Truthy();
    if (!test.empty()) {
      HONE_ASSIGN_OR_RETURN(pass, ApplyTest(test, subject, test_args));
    }
    if (pass == keep) out.push_back(item);
  }
  return Value::MakeList(std::move(out));
}

}  // namespace

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const CallArgs& args) {
  const Value* a0 = Arg(args, 0, "");
  if (name == "tojson") return ToJson(input, args);
  if (name == "length" || name == "count") {
    HONE_ASSIGN_OR_RETURN(int64_t n, Length(input));
    return Value::Int(n);
  }
  if (name == "default" || name == "d") {
    const Value* fallback = Arg(args, 0, "default_value");
    const Value* boolean = Arg(args, 1, "boolean");
    const bool use_fallback = input.is_undefined() || (boolean != nullptr && boolean->Truthy() && !input.Truthy());
    if (!use_fallback) return input;
    return fallback != nullptr ? *fallback : Value::String("");
  }
  if (name == "safe" || name == "string") return input.is_string() && name == "safe" ? input : Value::String(input.ToString());
  if (name == "trim") {
    const Value* chars = Arg(args, 0, "chars");
    std::string chars_text = chars != nullptr && chars->is_string() ? chars->str() : "";
    return Value::String(PyStrip(input.ToString(), chars != nullptr && chars->is_string() ? &chars_text : nullptr, true, true));
  }
  if (name == "lower") return Value::String(AsciiLower(input.ToString()));
  if (name == "upper") return Value::String(AsciiUpper(input.ToString()));
  if (name == "capitalize") return Value::String(PyCapitalize(input.ToString()));
  if (name == "title") {
    // jinja2's own title: words start after runs of whitespace, '-', '(', '{', '[' or '<'.
    std::string s = input.ToString(), out;
    bool start = true;
    for (char c : s) {
      const bool boundary = std::isspace(static_cast<unsigned char>(c)) || c == '-' || c == '(' || c == '{' ||
                            c == '[' || c == '<';
      out += static_cast<char>(start && !boundary ? std::toupper(static_cast<unsigned char>(c))
                                                  : std::tolower(static_cast<unsigned char>(c)));
      start = boundary;
    }
    return Value::String(std::move(out));
  }
  if (name == "replace") {
    const Value* from = Arg(args, 0, "old");
    const Value* to = Arg(args, 1, "new");
    const Value* count = Arg(args, 2, "count");
    if (from == nullptr || to == nullptr) return Error("replace: needs old and new");
    return Value::String(ReplaceAll(input.ToString(), from->ToString(), to->ToString(),
                                    count != nullptr && count->kind() == Value::Kind::kInt ? count->int_value() : -1));
  }
  if (name == "indent") {
    const Value* width = Arg(args, 0, "width");
    const Value* first = Arg(args, 1, "first");
    const Value* blank = Arg(args, 2, "blank");
    std::string pad = width == nullptr ? "    " : width->is_string() ? width->str()
                                                 : std::string(static_cast<size_t>(std::clamp<int64_t>(width->int_value(), 0, 256)), ' ');
    std::string s = input.ToString(), out;
    size_t at = 0;
    for (bool first_line = true; at <= s.size(); first_line = false) {
      size_t nl = s.find('\n', at);
      std::string line = s.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      if ((!first_line || (first != nullptr && first->Truthy())) && (!line.empty() || (blank != nullptr && blank->Truthy()))) {
        out += pad;
      }
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      at = nl + 1;
    }
    return Value::String(std::move(out));
  }
  if (name == "join") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    const Value* sep = Arg(args, 0, "d");
    const Value* attribute = Arg(args, 1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0 && sep != nullptr) out += sep->ToString();
      Value item = items[i];
      if (attribute != nullptr) {
        HONE_ASSIGN_OR_RETURN(item, GetAttr(item, attribute->ToString()));
      }
      out += item.ToString();
    }
    return Value::String(std::move(out));
  }
  if (name == "first" || name == "last") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    if (items.empty()) return Value::Undefined(absl::StrCat("No ", std::string(name), " item, sequence was empty."));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "items") {
    if (input.is_undefined()) return Value::MakeList({});
    if (!input.is_dict()) return Error(absl::StrCat("items: can only get item pairs from a mapping, not ", input.TypeName()));
    return CallMethod(input, "items", {});
  }
  if (name == "list") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    return Value::MakeList(std::move(items));
  }
  if (name == "reverse") {
    if (input.is_string()) {
      const std::vector<size_t> cps = CodePointOffsets(input.str());
      std::string out;
      for (size_t i = cps.size() - 1; i > 0; --i) out.append(input.str(), cps[i - 1], cps[i] - cps[i - 1]);
      return Value::String(std::move(out));
    }
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "sort") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    const Value* reverse = Arg(args, 0, "reverse");
    const Value* case_sensitive = Arg(args, 1, "case_sensitive");
    const Value* attribute = Arg(args, 2, "attribute");
    std::string attr = attribute != nullptr ? attribute->ToString() : "";
    HONE_ASSIGN_OR_RETURN(items, SortList(std::move(items), reverse != nullptr && reverse->Truthy(),
                                          case_sensitive != nullptr && case_sensitive->Truthy(),
                                          attribute != nullptr ? &attr : nullptr));
    return Value::MakeList(std::move(items));
  }
  if (name == "unique") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    List out;
    for (const Value& v : items) {
      bool seen = false;
      for (const Value& o : out) seen = seen || Equal(SortKey(o, false, nullptr), SortKey(v, false, nullptr));
      if (!seen) out.push_back(v);
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "map") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    const Value* attribute = Arg(args, 99, "attribute");
    CallArgs rest;
    if (attribute == nullptr) {
      if (a0 == nullptr || !a0->is_string()) return Error("map: give a filter name or attribute=");
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    }
    List out;
    for (const Value& item : items) {
      if (attribute != nullptr) {
        HONE_ASSIGN_OR_RETURN(Value v, GetAttr(item, attribute->ToString()));
        if (v.is_undefined()) {
          if (const Value* def = Arg(args, 99, "default")) v = *def;
        }
        out.push_back(std::move(v));
      } else {
        HONE_ASSIGN_OR_RETURN(Value v, ApplyFilter(a0->str(), item, rest));
        out.push_back(std::move(v));
      }
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "select") return Select(input, args, true, false);
  if (name == "reject") return Select(input, args, false, false);
  if (name == "selectattr") return Select(input, args, true, true);
  if (name == "rejectattr") return Select(input, args, false, true);
  if (name == "max" || name == "min") {
    HONE_ASSIGN_OR_RETURN(List items, Iterate(input));
    if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
    HONE_ASSIGN_OR_RETURN(items, SortList(std::move(items), name == "max", false, nullptr));
    return items.front();
  }
  if (name == "int") {
    if (input.kind() == Value::Kind::kFloat) return Value::Int(static_cast<int64_t>(input.AsDouble()));
    if (input.is_number()) return Value::Int(input.int_value());
    if (input.is_string()) {
      const std::string t = PyStrip(input.str(), nullptr, true, true);
      char* end = nullptr;
      const long long v = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && end != nullptr && *end == '\0') return Value::Int(v);
    }
    return a0 != nullptr ? *a0 : Value::Int(0);
  }
  if (name == "float") {
    if (input.is_number()) return Value::Float(input.AsDouble());
    if (input.is_string()) {
      const std::string t = PyStrip(input.str(), nullptr, true, true);
      char* end = nullptr;
      const double v = std::strtod(t.c_str(), &end);
      if (!t.empty() && end != nullptr && *end == '\0') return Value::Float(v);
    }
    return a0 != nullptr ? *a0 : Value::Float(0);
  }
  if (name == "abs") {
    if (input.kind() == Value::Kind::kFloat) return Value::Float(std::fabs(input.AsDouble()));
    if (input.is_number() && input.int_value() != INT64_MIN) return Value::Int(std::abs(input.int_value()));
    return Error(absl::StrCat("bad operand type for abs(): '", input.TypeName(), "'"));
  }
  if (name == "e" || name == "escape") {
    std::string out;
    for (char c : input.ToString()) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::String(std::move(out));
  }
  return Error(absl::StrCat("unknown filter '", std::string(name), "'"));
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& v, const CallArgs& args) {
  const Value* other = Arg(args, 0, "");
  auto need_other = [&]() -> absl::Status {
    if (other == nullptr) return Error(absl::StrCat("test '", std::string(name), "' needs an argument"));
    return absl::OkStatus();
  };
  using K = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind() == K::kBool;
  if (name == "true") return v.kind() == K::kBool && v.bool_value();
  if (name == "false") return v.kind() == K::kBool && !v.bool_value();
  if (name == "integer") return v.kind() == K::kInt;
  if (name == "float") return v.kind() == K::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "sequence") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "callable") return v.kind() == K::kCallable;
  if (name == "lower") return v.is_string() && AsciiLower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && AsciiUpper(v.str()) == v.str();
  if (name == "odd" || name == "even") {
    if (v.kind() != K::kInt && v.kind() != K::kBool) return Error(absl::StrCat("test '", std::string(name), "' needs an integer"));
    return (v.int_value() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    HONE_RETURN_IF_ERROR(need_other());
    if (!(v.kind() == K::kInt || v.kind() == K::kBool) || !(other->kind() == K::kInt) || other->int_value() == 0) {
      return Error("divisibleby: needs integers, a non-zero divisor");
    }
    return v.int_value() % other->int_value() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") {
    HONE_RETURN_IF_ERROR(need_other());
    return Equal(v, *other);
  }
  if (name == "ne" || name == "!=") {
    HONE_RETURN_IF_ERROR(need_other());
    return !Equal(v, *other);
  }
  if (name == "lt" || name == "lessthan" || name == "<") {
    HONE_RETURN_IF_ERROR(need_other());
    return Less(v, *other);
  }
  if (name == "gt" || name == "greaterthan" || name == ">") {
    HONE_RETURN_IF_ERROR(need_other());
    return Less(*other, v);
  }
  if (name == "le" || name == "<=") {
    HONE_RETURN_IF_ERROR(need_other());
    HONE_ASSIGN_OR_RETURN(bool greater, Less(*other, v));
    return !greater;
  }
  if (name == "ge" || name == ">=") {
    HONE_RETURN_IF_ERROR(need_other());
    HONE_ASSIGN_OR_RETURN(bool less, Less(v, *other));
    return !less;
  }
  if (name == "in") {
    HONE_RETURN_IF_ERROR(need_other());
    return Contains(*other, v);
  }
  return Error(absl::StrCat("unknown test '", std::string(name), "'"));
}

Dict Builtins() {
  Dict d;
  d.Set("range", Value::Callable("range", [](const CallArgs& args) -> absl::StatusOr<Value> {
    HONE_RETURN_IF_ERROR(CheckArgs(args, "range", 3, {}));
    int64_t bounds[3] = {0, 0, 1};
    for (const Value& a : args.positional) {
      if (a.kind() != Value::Kind::kInt && a.kind() != Value::Kind::kBool) return Error("range() needs integers");
    }
    if (args.positional.empty()) return Error("range expected at least 1 argument, got 0");
    if (args.positional.size() == 1) {
      bounds[1] = args.positional[0].int_value();
    } else {
      for (size_t i = 0; i < args.positional.size(); ++i) bounds[i] = args.positional[i].int_value();
    }
    if (bounds[2] == 0) return Error("range() arg 3 must not be zero");
    List out;
    for (int64_t i = bounds[0]; bounds[2] > 0 ? i < bounds[1] : i > bounds[1]; i += bounds[2]) {
      if (out.size() >= 1'000'000) return Error("range() too long (more than 1000000 items)");
      out.push_back(Value::Int(i));
      if ((bounds[2] > 0 && i > INT64_MAX - bounds[2]) || (bounds[2] < 0 && i < INT64_MIN - bounds[2])) break;
    }
    return Value::MakeList(std::move(out));
  }));
  d.Set("namespace", Value::Callable("namespace", [](const CallArgs& args) -> absl::StatusOr<Value> {
    Dict attributes;
    for (const Value& a : args.positional) {
      if (!a.is_dict()) return Error("namespace() takes keyword arguments or a dict");
      for (const auto& [k, v] : a.dict().entries) attributes.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) attributes.Set(k, v);
    return Value::MakeNamespace(std::move(attributes));
  }));
  d.Set("dict", Value::Callable("dict", [](const CallArgs& args) -> absl::StatusOr<Value> {
    Dict out;
    for (const Value& a : args.positional) {
      if (!a.is_dict()) return Error("dict() takes keyword arguments or a dict");
      for (const auto& [k, v] : a.dict().entries) out.Set(k, v);
    }
    for (const auto& [k, v] : args.keyword) out.Set(k, v);
    return Value::MakeDict(std::move(out));
  }));
  d.Set("raise_exception", Value::Callable("raise_exception", [](const CallArgs& args) -> absl::StatusOr<Value> {
    const Value* message = Arg(args, 0, "message");
    return absl::InvalidArgumentError(
        absl::StrCat("raise_exception: ", message == nullptr ? "" : message->ToString()));
  }));
  d.Set("strftime_now", Value::Callable("strftime_now", [](const CallArgs& args) -> absl::StatusOr<Value> {
    const Value* format = Arg(args, 0, "format");
    if (format == nullptr || !format->is_string()) return Error("strftime_now() needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof buf, format->str().c_str(), &local);
    return Value::String(std::string(buf, n));
  }));
  return d;
}

}  // namespace hone::jinja::internal
