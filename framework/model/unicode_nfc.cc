#include "framework/model/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace hone::internal {
namespace {

#include "framework/model/unicode_nfc_data.inc"

constexpr uint32_t kPrimaryComposite = 0x80000000u;

// Hangul syllables are composed arithmetically (Unicode 3.12) rather than from tables.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

bool IsHangulSyllable(char32_t cp) { return cp >= kSBase && cp < kSBase + kSCount; }

int CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + sizeof(kCombiningClasses) / sizeof(kCombiningClasses[0]);
  const auto* it = std::upper_bound(kCombiningClasses, end, cp,
                                    [](char32_t c, const uint32_t* r) { return c < r[0]; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= (*it)[1] ? static_cast<int>((*it)[2]) : 0;
}

struct NfcTables {
  std::unordered_map<char32_t, std::pair<char32_t, char32_t>> decompose;
  std::unordered_map<uint64_t, char32_t> compose;
  // Code points whose NFC quick-check value is No or Maybe: where they occur the text may
  // change under NFC, so the full algorithm has to run.
  std::unordered_set<char32_t> not_quick_yes;
};

const NfcTables& Tables() {
  static const NfcTables* tables = [] {
    auto* t = new NfcTables;
    for (const auto& e : kDecompositions) {
      const char32_t cp = e[0] & ~kPrimaryComposite;
      t->decompose.emplace(cp, std::make_pair(char32_t{e[1]}, char32_t{e[2]}));
      if (e[0] & kPrimaryComposite) {
        t->compose.emplace((uint64_t{e[1]} << 21) | e[2], cp);
        t->not_quick_yes.insert(e[2]);
      } else {
        t->not_quick_yes.insert(cp);
      }
    }
    for (char32_t v = kVBase; v < kVBase + kVCount; ++v) t->not_quick_yes.insert(v);
    for (char32_t c = kTBase + 1; c < kTBase + kTCount; ++c) t->not_quick_yes.insert(c);
    return t;
  }();
  return *tables;
}

void DecomposeInto(const NfcTables& t, char32_t cp, std::vector<char32_t>* out) {
  if (IsHangulSyllable(cp)) {
    const char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  auto it = t.decompose.find(cp);
  if (it == t.decompose.end()) {
    out->push_back(cp);
    return;
  }
  DecomposeInto(t, it->second.first, out);
  if (it->second.second != 0) DecomposeInto(t, it->second.second, out);
}

// Returns the primary composite of the pair, or 0 when there is none.
char32_t ComposePair(const NfcTables& t, char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (IsHangulSyllable(a) && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  auto it = t.compose.find((uint64_t{a} << 21) | b);
  return it == t.compose.end() ? 0 : it->second;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    char32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

char32_t NextCodePoint(std::string_view text, size_t* pos) {
  const auto c = static_cast<unsigned char>(text[*pos]);
  if (c < 0x80) {
    ++*pos;
    return c;
  }
  const int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (0x7F >> len);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[*pos + k]) & 0x3F);
  *pos += len;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string NfcNormalize(std::string_view text) {
  // Quick check: everything below U+0300 is a starter that never composes with what
  // precedes it, so such text (ASCII, Latin-1) is already NFC and needs no tables.
  bool maybe_changes = false;
  for (size_t pos = 0; pos < text.size() && !maybe_changes;) {
    if (static_cast<unsigned char>(text[pos]) < 0xCC) {  // lead bytes below 0xCC are < U+0300
      pos += static_cast<unsigned char>(text[pos]) < 0x80 ? 1 : 2;
      continue;
    }
    const char32_t cp = NextCodePoint(text, &pos);
    maybe_changes = CombiningClass(cp) != 0 || Tables().not_quick_yes.count(cp) != 0;
  }
  if (!maybe_changes) return std::string(text);

  const NfcTables& t = Tables();
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) DecomposeInto(t, NextCodePoint(text, &pos), &cps);

  // Canonical ordering: stable-sort each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (CombiningClass(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && CombiningClass(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](char32_t a, char32_t b) {
      return CombiningClass(a) < CombiningClass(b);
    });
    i = j;
  }

  // Canonical composition (UAX #15 sample algorithm): a mark composes with the last starter
  // unless a character in between is a starter or has a class >= its own (it is blocked).
  if (!cps.empty()) {
    size_t starter = 0;
    bool have_starter = CombiningClass(cps[0]) == 0;
    int last_class = have_starter ? 0 : 256;
    size_t out = 1;
    for (size_t i = 1; i < cps.size(); ++i) {
      const char32_t cp = cps[i];
      const int cls = CombiningClass(cp);
      const char32_t composite = have_starter ? ComposePair(t, cps[starter], cp) : 0;
      if (composite != 0 && (last_class < cls || last_class == 0)) {
        cps[starter] = composite;
        continue;
      }
      if (cls == 0) starter = out, have_starter = true;
      last_class = cls;
      cps[out++] = cp;
    }
    cps.resize(out);
  }
  std::string result;
  result.reserve(text.size());
  for (char32_t cp : cps) AppendUtf8(cp, &result);
  return result;
}

}  // namespace hone::internal
