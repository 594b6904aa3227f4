// String and dict methods of the Jinja2 interpreter (internal; see jinja_ast.h), with
// Python's str semantics for ASCII text (case mapping is ASCII-only; whitespace includes
// the Unicode spaces Python strips).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/chat/value.h"

namespace hone::jinja::internal {

bool IsStringMethod(std::string_view name);
bool IsDictMethod(std::string_view name);
absl::StatusOr<Value> CallMethod(const Value& self, const std::string& name, const CallArgs& args);

// str.strip / lstrip / rstrip; `chars` null means whitespace.
std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right);
std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);
std::string PyCapitalize(std::string_view s);
// str.replace(from, to, count); count < 0 replaces all.
std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to, int64_t count);
// `format % args` for %s %r %d %i %f %x %%.
absl::StatusOr<Value> FormatPercent(const std::string& format, const Value& args, size_t max_bytes);

// The argument at `index` or named `name`; null when not given.
const Value* Arg(const CallArgs& args, size_t index, std::string_view name);
absl::Status CheckArgs(const CallArgs& args, std::string_view what, size_t max_positional,
                       std::initializer_list<std::string_view> keywords);

}  // namespace hone::jinja::internal
