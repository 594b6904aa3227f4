// A guard for JSON a user or a peer hands in (config.json, a safetensors header or index,
// tokenizer.json). Header-only: the model libraries use it without linking hone_core.
#pragma once

#include <string_view>

namespace hone {

// True when JSON `text` nests arrays/objects deeper than `limit` (brackets inside strings
// do not count). Checked before parsing: nlohmann parses any depth, but recursive code
// on the result (dump() in error messages) overflows the stack on a crafted file
// nested a million levels deep.
inline bool JsonDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace hone
