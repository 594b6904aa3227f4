// Values of the Jinja2 subset (framework/chat/jinja.h): what a template computes with.
// Python semantics where a chat template can observe them: truthiness, `==`, str() and
// repr(), json.dumps. Lists and dicts are immutable once built and shared by pointer (a
// chat template runs in jinja2's ImmutableSandboxedEnvironment); a namespace is the one
// mutable object (`{% set ns.x = ... %}`). No libtorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace hone::jinja {

class Value;
using List = std::vector<Value>;

// A Python dict with string keys, in insertion order.
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);  // replaces in place, or appends
};

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
using Function = std::function<absl::StatusOr<Value>(const CallArgs&)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() = default;  // undefined
  // An undefined value that remembers why, for the error when it is used ("'x' is undefined").
  static Value Undefined(std::string hint);
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value MakeList(List items);
  static Value MakeTuple(List items);  // a list that prints as (a, b)
  static Value MakeDict(Dict dict);
  static Value MakeNamespace(Dict attributes);
  static Value Callable(std::string name, Function fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_tuple() const { return kind_ == Kind::kList && b_; }

  bool bool_value() const { return b_; }
  int64_t int_value() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool or int
  double AsDouble() const;  // bool, int or float
  const std::string& str() const { return s_; }
  const List& list() const { return *list_; }
  const Dict& dict() const { return *dict_; }  // dict or namespace
  Dict& mutable_namespace() const { return *dict_; }
  // True when `target` (a namespace's attributes) is this value or is held by it, through
  // lists, dicts and namespaces. Storing such a value in `target` would make a reference
  // cycle that shared ownership never frees.
  bool Reaches(const Dict* target) const;
  const Dict* dict_identity() const { return dict_.get(); }
  const Function& function() const { return *fn_; }
  const std::string& callable_name() const { return s_; }
  const std::string& undefined_hint() const { return s_; }

  bool Truthy() const;
  // Python str(): what `{{ x }}` prints. Undefined prints as "".
  std::string ToString() const;
  // Python repr(), as str() shows list and dict elements.
  std::string Repr() const;
  // The Python type name, for error messages ("str", "int", "list", "dict", ...).
  const char* TypeName() const;

  // From JSON (objects keep their key order) and back. ToJson follows Python's
  // json.dumps(x, ensure_ascii, indent, separators, sort_keys).
  static Value FromJson(const std::string& json_text, bool* ok);
  struct JsonOptions {
    bool ensure_ascii = false;
    int indent = -1;           // -1: none; otherwise spaces per level
    std::string indent_text;   // used when indent == -2 (indent given as a string)
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
  };
  absl::StatusOr<std::string> ToJson(const JsonOptions& options) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> fn_;
};

// Python `==` (1 == 1.0 == True, deep for lists and dicts).
bool Equal(const Value& a, const Value& b);
// Python repr of a float ("1.0", "0.1", "1e-05", "inf").
std::string FloatRepr(double f);
// The UTF-8 code points of `s` as byte offsets: offsets[i] is where code point i starts,
// with offsets.back() == s.size(). Invalid bytes count as one code point each.
std::vector<size_t> CodePointOffsets(std::string_view s);

}  // namespace hone::jinja
