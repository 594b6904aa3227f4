// UTF-8 helpers and Unicode NFC normalisation for the tokenizer (internal to hone_tokenizer).
//
// NFC here is the full Unicode algorithm (canonical decomposition, canonical ordering,
// canonical composition, Hangul included) over tables generated from the Unicode Character
// Database 14.0 (unicode_nfc_data.inc). Hugging Face tokenizers uses a newer database; the
// two differ only for characters added after 14.0.
#pragma once

#include <string>
#include <string_view>

namespace hone::internal {

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Decodes the code point starting at text[*pos] and advances *pos past it.
// REQUIRES: `text` is valid UTF-8 and *pos < text.size() is at a character boundary.
char32_t NextCodePoint(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// Returns the NFC form of `text`. Text that the quick check proves to be NFC already (all
// ASCII, most CJK, precomposed Latin) is returned unchanged without building tables.
// REQUIRES: `text` is valid UTF-8.
std::string NfcNormalize(std::string_view text);

}  // namespace hone::internal
