// Answer extraction and integer normalisation for the `boxed_integer` reward.
// Everything here is a byte-level scan: model output is arbitrary (possibly invalid
// UTF-8, possibly cut mid-token), and the rules must hold for any input.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/reward/reward.h"

namespace hone::reward {
namespace {

constexpr std::string_view kBoxOpen = "\\boxed{";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Debian's absl::string_view is not std::string_view, so absl's string_view helpers
// (StripAsciiWhitespace, StrCat of a view) are avoided in this module.
std::string_view Trim(std::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Given the index just past an opening `{`, returns the index of its balancing `}`, or
// npos when the text ends first. A backslash escapes the next byte, so `\{`, `\}` (literal
// braces) and `\\` (a LaTeX line break before a real `}`) are all skipped as pairs.
size_t FindClosingBrace(std::string_view text, size_t start) {
  int depth = 1;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      ++i;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

// Replaces every `\text{X}` / `\mathrm{X}` by X, innermost wrappers included. nullopt
// when a wrapper never closes: such an answer is not a clean integer.
std::optional<std::string> UnwrapTextCommands(std::string_view answer) {
  static constexpr std::string_view kWrappers[] = {"\\text{", "\\mathrm{"};
  std::string s(answer);
  while (true) {
    size_t best = std::string::npos;
    size_t open_len = 0;
    for (std::string_view w : kWrappers) {
      size_t pos = s.find(w);
      if (pos < best) {
        best = pos;
        open_len = w.size();
      }
    }
    if (best == std::string::npos) return s;
    size_t content = best + open_len;
    size_t close = FindClosingBrace(s, content);
    if (close == std::string::npos) return std::nullopt;
    s = absl::StrCat(s.substr(0, best), s.substr(content, close - content), s.substr(close + 1));
  }
}

// Drops whitespace, `\$`, `$`, `\!` and `\,`: decoration that never changes the value.
std::string DropDecoration(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '$') continue;
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '$' || s[i + 1] == '!' || s[i + 1] == ',')) {
      ++i;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// [+-] digits-with-valid-thousands-groups [. zeros]; the whole string, nothing else.
std::optional<int64_t> ParseIntegerStrict(std::string_view s) {
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  // Magnitude accumulates as unsigned so that INT64_MIN (one past INT64_MAX) parses.
  const uint64_t limit = negative ? uint64_t{1} << 63 : uint64_t{std::numeric_limits<int64_t>::max()};
  uint64_t value = 0;
  size_t group_len = 0;  // digits in the current comma-separated group
  bool grouped = false;  // a comma has been seen
  size_t digits = 0;
  for (; i < s.size() && (IsDigit(s[i]) || s[i] == ','); ++i) {
    if (s[i] == ',') {
      // The first group has 1-3 digits; every later one exactly 3.
      if (group_len == 0 || group_len > 3 || (grouped && group_len != 3)) return std::nullopt;
      grouped = true;
      group_len = 0;
      continue;
    }
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (value > (limit - d) / 10) return std::nullopt;
    value = value * 10 + d;
    ++group_len;
    ++digits;
  }
  if (digits == 0 || (grouped && group_len != 3)) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t zeros = 0;
    for (; i < s.size() && s[i] == '0'; ++i) ++zeros;
    if (zeros == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (negative) return value == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                                      : -static_cast<int64_t>(value);
  return static_cast<int64_t>(value);
}

}  // namespace

std::optional<std::string> ExtractLastBoxed(std::string_view text) {
  size_t open = text.rfind(kBoxOpen);
  if (open == std::string_view::npos) return std::nullopt;
  size_t content = open + kBoxOpen.size();
  size_t close = FindClosingBrace(text, content);
  if (close == std::string_view::npos) return std::string(text.substr(content));
  return std::string(text.substr(content, close - content));
}

BoxCount CountBoxes(std::string_view text) {
  BoxCount count;
  for (size_t pos = text.find(kBoxOpen); pos != std::string_view::npos;
       pos = text.find(kBoxOpen, pos + 1)) {
    ++count.total;
    if (FindClosingBrace(text, pos + kBoxOpen.size()) != std::string_view::npos) ++count.complete;
  }
  return count;
}

std::optional<std::string> ExtractLastInteger(std::string_view text) {
  std::optional<std::string> last;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < n && IsDigit(text[i])) ++i;
    if (i - start <= 3) {
      // Join ",ddd" groups only when exactly three digits follow the comma.
      while (i + 3 < n && text[i] == ',' && IsDigit(text[i + 1]) && IsDigit(text[i + 2]) &&
             IsDigit(text[i + 3]) && (i + 4 == n || !IsDigit(text[i + 4]))) {
        i += 4;
      }
    }
    if (i + 1 < n && text[i] == '.' && IsDigit(text[i + 1])) {
      ++i;
      while (i < n && IsDigit(text[i])) ++i;
    }
    size_t begin = start;
    if (start > 0 && (text[start - 1] == '-' || text[start - 1] == '+')) {
      // "x-5" and "10-5" are subtractions; "is -5" and "(-5" are negative numbers.
      bool binary = false;
      if (start >= 2) {
        unsigned char before = static_cast<unsigned char>(text[start - 2]);
        binary = absl::ascii_isalnum(before) || before == ')' || before == ']' || before == '}';
      }
      if (!binary) begin = start - 1;
    }
    last = std::string(text.substr(begin, i - begin));
  }
  return last;
}

std::optional<int64_t> NormalizeInteger(std::string_view answer) {
  std::optional<std::string> unwrapped = UnwrapTextCommands(answer);
  if (!unwrapped) return std::nullopt;
  return ParseIntegerStrict(DropDecoration(*unwrapped));
}

absl::StatusOr<int64_t> ParseGroundTruth(std::string_view ground_truth) {
  std::string_view value = ground_truth;
  size_t marker = value.rfind("####");
  if (marker != std::string_view::npos) value = value.substr(marker + 4);
  value = Trim(value);
  std::optional<int64_t> parsed = ParseIntegerStrict(value);
  if (!parsed) {
    std::string_view shown = ground_truth.size() > 80 ? ground_truth.substr(ground_truth.size() - 80)
                                                      : ground_truth;
    return absl::InvalidArgumentError(absl::StrCat(
        "ground truth is neither an integer nor a GSM8K answer ending in '#### N': '",
        ground_truth.size() > 80 ? "..." : "", std::string(shown), "'"));
  }
  return *parsed;
}

}  // namespace hone::reward
