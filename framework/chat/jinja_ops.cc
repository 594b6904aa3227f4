// Operators, attribute/item access, slices, iteration and the str/dict methods, with
// Python's semantics (strings index and slice by code point).
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"
#include "framework/chat/jinja_strings.h"
#include "framework/core/status.h"

namespace hone::jinja::internal {
namespace {

absl::Status TypeError(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// Python's slice.indices(): the positions a slice visits in a sequence of length n.
absl::StatusOr<std::vector<int64_t>> SliceIndices(int64_t n, const Value* start, const Value* stop,
                                                  const Value* step) {
  auto as_int = [](const Value* v, int64_t* out) -> absl::Status {
    if (v == nullptr || v->is_none()) return absl::OkStatus();
    if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) {
      return TypeError("slice indices must be integers or None");
    }
    *out = v->int_value();
    return absl::OkStatus();
  };
  int64_t st = 1;
  HONE_RETURN_IF_ERROR(as_int(step, &st));
  if (st == 0) return TypeError("slice step cannot be zero");
  int64_t lo = st > 0 ? 0 : n - 1, hi = st > 0 ? n : -1;
  auto clamp = [&](int64_t v, bool is_stop) {
    if (v < 0) v += n;
    if (st > 0) return std::clamp<int64_t>(v, 0, n);
    return std::clamp<int64_t>(v, -1, n - 1);
    (void)is_stop;
  };
  if (start != nullptr && !start->is_none()) {
    int64_t v = 0;
    HONE_RETURN_IF_ERROR(as_int(start, &v));
    lo = clamp(v, false);
  }
  if (stop != nullptr && !stop->is_none()) {
    int64_t v = 0;
    HONE_RETURN_IF_ERROR(as_int(stop, &v));
    hi = clamp(v, true);
  }
  std::vector<int64_t> out;
  if (st > 0) {
    for (int64_t i = lo; i < hi; i += st) out.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += st) out.push_back(i);
  }
  return out;
}

bool IsInt(const Value& v) { return v.kind() == Value::Kind::kInt || v.kind() == Value::Kind::kBool; }

Value Method(const Value& self, const std::string& name) {
  return Value::Callable(name, [self, name](const CallArgs& args) { return CallMethod(self, name, args); });
}

}  // namespace

absl::Status UndefinedError(const Value& v) {
  return absl::InvalidArgumentError(v.undefined_hint().empty() ? "undefined value" : v.undefined_hint());
}

absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: return UndefinedError(obj);
    case Value::Kind::kDict: {
      if (IsDictMethod(name)) return Method(obj, name);
      if (const Value* v = obj.dict().Find(name)) return *v;
      return Value::Undefined(absl::StrCat("'dict object' has no attribute '", name, "'"));
    }
    case Value::Kind::kNamespace: {
      if (const Value* v = obj.dict().Find(name)) return *v;
      return Value::Undefined(absl::StrCat("'Namespace' has no attribute '", name, "'"));
    }
    case Value::Kind::kString:
      if (IsStringMethod(name)) return Method(obj, name);
      break;
    default: break;
  }
  return Value::Undefined(absl::StrCat("'", obj.TypeName(), " object' has no attribute '", name, "'"));
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: return UndefinedError(obj);
    case Value::Kind::kList: {
      if (!IsInt(key)) break;
      int64_t i = key.int_value();
      const int64_t n = static_cast<int64_t>(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined(absl::StrCat("list index ", key.int_value(), " out of range"));
      return obj.list()[static_cast<size_t>(i)];
    }
    case Value::Kind::kString: {
      if (!IsInt(key)) break;
      const std::vector<size_t> cps = CodePointOffsets(obj.str());
      int64_t i = key.int_value();
      const int64_t n = static_cast<int64_t>(cps.size()) - 1;
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined(absl::StrCat("string index ", key.int_value(), " out of range"));
      return Value::String(obj.str().substr(cps[i], cps[i + 1] - cps[i]));
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      if (!key.is_string()) break;
      if (const Value* v = obj.dict().Find(key.str())) return *v;
      if (obj.kind() == Value::Kind::kDict && IsDictMethod(key.str())) return Method(obj, key.str());
      return Value::Undefined(absl::StrCat("'dict object' has no attribute '", key.str(), "'"));
    }
    default: break;
  }
  return Value::Undefined(absl::StrCat("'", obj.TypeName(), " object' has no item ", key.Repr()));
}

absl::StatusOr<Value> GetSlice(const Value& obj, const Value* start, const Value* stop, const Value* step) {
  if (obj.is_undefined()) return UndefinedError(obj);
  if (obj.is_list()) {
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> idx,
                          SliceIndices(static_cast<int64_t>(obj.list().size()), start, stop, step));
    List out;
    for (int64_t i : idx) out.push_back(obj.list()[static_cast<size_t>(i)]);
    return obj.is_tuple() ? Value::MakeTuple(std::move(out)) : Value::MakeList(std::move(out));
  }
  if (obj.is_string()) {
    const std::vector<size_t> cps = CodePointOffsets(obj.str());
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> idx,
                          SliceIndices(static_cast<int64_t>(cps.size()) - 1, start, stop, step));
    std::string out;
    for (int64_t i : idx) out.append(obj.str(), cps[i], cps[i + 1] - cps[i]);
    return Value::String(std::move(out));
  }
  return TypeError(absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
}

absl::StatusOr<List> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return List{};
    case Value::Kind::kList: return v.list();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& [k, unused] : v.dict().entries) keys.push_back(Value::String(k));
      return keys;
    }
    case Value::Kind::kString: {
      const std::vector<size_t> cps = CodePointOffsets(v.str());
      List chars;
      for (size_t i = 0; i + 1 < cps.size(); ++i) chars.push_back(Value::String(v.str().substr(cps[i], cps[i + 1] - cps[i])));
      return chars;
    }
    default: return TypeError(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
  }
}

absl::StatusOr<bool> Less(const Value& a, const Value& b) {
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  if (a.is_number() && b.is_number()) {
    if (IsInt(a) && IsInt(b)) return a.int_value() < b.int_value();
    return a.AsDouble() < b.AsDouble();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list()) {
    const List &x = a.list(), &y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equal(x[i], y[i])) continue;
      return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return TypeError(absl::StrCat("'<' not supported between instances of '", a.TypeName(), "' and '", b.TypeName(), "'"));
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        return TypeError(absl::StrCat("'in <string>' requires string as left operand, not ", item.TypeName()));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.list()) {
        if (Equal(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return item.is_string() && container.dict().Find(item.str()) != nullptr;
    default: return TypeError(absl::StrCat("argument of type '", container.TypeName(), "' is not iterable"));
  }
}

absl::StatusOr<Value> BinaryOp(std::string_view op, const Value& a, const Value& b, size_t max_bytes) {
  if (op == "~") {
    std::string s = a.ToString() + b.ToString();
    if (s.size() > max_bytes) return TypeError("string too long");
    return Value::String(std::move(s));
  }
  if (a.is_undefined()) return UndefinedError(a);
  if (b.is_undefined()) return UndefinedError(b);
  auto unsupported = [&]() {
    return TypeError(absl::StrCat("unsupported operand type(s) for ", std::string(op), ": '", a.TypeName(), "' and '",
                                  b.TypeName(), "'"));
  };
  const bool ints = IsInt(a) && IsInt(b);
  const bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) {
      int64_t r;
      if (__builtin_add_overflow(a.int_value(), b.int_value(), &r)) return TypeError("integer overflow");
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.AsDouble() + b.AsDouble());
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > max_bytes) return TypeError("string too long");
      return Value::String(a.str() + b.str());
    }
    if (a.is_string()) return TypeError(absl::StrCat("can only concatenate str (not \"", b.TypeName(), "\") to str"));
    if (a.is_list() && b.is_list()) {
      if (a.list().size() + b.list().size() > max_bytes) return TypeError("list too long");
      List out = a.list();
      out.insert(out.end(), b.list().begin(), b.list().end());
      return a.is_tuple() ? Value::MakeTuple(std::move(out)) : Value::MakeList(std::move(out));
    }
    return unsupported();
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (__builtin_sub_overflow(a.int_value(), b.int_value(), &r)) return TypeError("integer overflow");
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.AsDouble() - b.AsDouble());
    return unsupported();
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (__builtin_mul_overflow(a.int_value(), b.int_value(), &r)) return TypeError("integer overflow");
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.AsDouble() * b.AsDouble());
    const Value* seq = IsInt(b) ? &a : IsInt(a) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (seq->is_string() || seq->is_list())) {
      const int64_t n = std::max<int64_t>(0, count->int_value());
      const size_t unit = seq->is_string() ? seq->str().size() : seq->list().size();
      if (unit > 0 && static_cast<uint64_t>(n) > max_bytes / unit) return TypeError("repetition too long");
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->str();
        return Value::String(std::move(out));
      }
      List out;
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->list().begin(), seq->list().end());
      return Value::MakeList(std::move(out));
    }
    return unsupported();
  }
  if (op == "/") {
    if (!nums) return unsupported();
    if (b.AsDouble() == 0) return TypeError("division by zero");
    return Value::Float(a.AsDouble() / b.AsDouble());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return FormatPercent(a.str(), b, max_bytes);
    if (!nums) return unsupported();
    if (b.AsDouble() == 0) return TypeError(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (ints) {
      const int64_t x = a.int_value(), y = b.int_value();
      if (x == std::numeric_limits<int64_t>::min() && y == -1) return TypeError("integer overflow");
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return Value::Int(op == "//" ? q : r);
    }
    const double x = a.AsDouble(), y = b.AsDouble();
    const double q = std::floor(x / y);
    if (op == "//") return Value::Float(q);
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value::Float(r);
  }
  if (op == "**") {
    if (!nums) return unsupported();
    if (ints && b.int_value() >= 0) {
      const int64_t base = a.int_value(), e = b.int_value();
      if (base == 0 || base == 1) return Value::Int(e == 0 ? 1 : base);
      if (base == -1) return Value::Int(e % 2 == 0 ? 1 : -1);
      int64_t r = 1;
      for (int64_t k = 0; k < e; ++k) {  // |base| >= 2 overflows within 64 rounds
        if (__builtin_mul_overflow(r, base, &r)) return TypeError("integer overflow");
      }
      return Value::Int(r);
    }
    return Value::Float(std::pow(a.AsDouble(), b.AsDouble()));
  }
  return TypeError(absl::StrCat("unknown operator ", std::string(op)));
}

}  // namespace hone::jinja::internal
