// Normalizers, pre-tokenizers and decoders; the models are in tokenizer_models.cc.
#include "framework/model/tokenizer_pipeline.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/model/unicode_nfc.h"

namespace hone::internal {
namespace {

using json = nlohmann::json;
using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

std::string TypeOf(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string()
             ? j["type"].get<std::string>()
             : std::string("<missing type>");
}

// GPT-2's byte-to-unicode table: byte-level BPE spells every byte as a printable
// character (printable Latin-1 bytes as themselves, the rest as U+0100 onwards, so the
// space 0x20 is "Ġ" U+0120), which keeps the vocabulary valid text.
struct ByteLevelTables {
  std::array<std::string, 256> byte_to_text;
  std::unordered_map<char32_t, uint8_t> char_to_byte;
};

const ByteLevelTables& ByteLevel() {
  static const ByteLevelTables* tables = [] {
    auto* t = new ByteLevelTables;
    char32_t next_unprintable = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : next_unprintable++;
      AppendUtf8(cp, &t->byte_to_text[b]);
      t->char_to_byte[cp] = static_cast<uint8_t>(b);
    }
    return t;
  }();
  return *tables;
}

std::string BytesToByteLevel(std::string_view bytes) {
  const ByteLevelTables& t = ByteLevel();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += t.byte_to_text[b];
  return out;
}

// As Hugging Face's ByteLevel decoder: a token made only of byte-level characters becomes
// those bytes; any other token (an added token such as " <x>") is taken verbatim.
void AppendByteLevelDecoded(std::string_view token, std::string* out) {
  const ByteLevelTables& t = ByteLevel();
  const size_t start = out->size();
  for (size_t pos = 0; pos < token.size();) {
    auto it = t.char_to_byte.find(NextCodePoint(token, &pos));
    if (it == t.char_to_byte.end()) {
      out->resize(start);
      out->append(token);
      return;
    }
    out->push_back(static_cast<char>(it->second));
  }
}

// A compiled PCRE2 pattern in UTF + UCP mode, so \s, \p{L}, \w are Unicode-aware as in the
// Oniguruma engine Hugging Face uses. JIT-compiled when the platform supports it.
class Regex {
 public:
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      return absl::InvalidArgumentError(
          absl::StrCat("regex /", pattern, "/ does not compile at offset ", error_offset, ": ",
                       reinterpret_cast<const char*>(message.data())));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // Failure only means no JIT.
    return std::unique_ptr<Regex>(new Regex(code));
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every non-overlapping match of `text`, scanning left to right; after an empty
  // match the scan moves on one character, like Oniguruma's find_iter.
  // REQUIRES: `text` is valid UTF-8 (it is not re-checked, which would be quadratic).
  absl::Status FindAll(std::string_view text, std::vector<Span>* out) const {
    struct Free {
      void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
    };
    // One capture slot suffices: only the whole match is read.
    thread_local std::unique_ptr<pcre2_match_data, Free> md(pcre2_match_data_create(1, nullptr));
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t offset = 0;
    while (offset <= text.size()) {
      int rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md.get(),
                           nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // Deep backtracking: the interpreter copes.
        rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         md.get(), nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        std::array<PCRE2_UCHAR, 256> message{};
        pcre2_get_error_message(rc, message.data(), message.size());
        return absl::ResourceExhaustedError(absl::StrCat(
            "pre-tokenizer regex failed: ", reinterpret_cast<const char*>(message.data())));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      out->emplace_back(ov[0], ov[1]);
      if (ov[1] > ov[0]) {
        offset = ov[1];
      } else if (ov[1] < text.size()) {
        size_t next = ov[1];
        NextCodePoint(text, &next);
        offset = next;
      } else {
        break;
      }
    }
    return absl::OkStatus();
  }

 private:
  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
};

// --- Normalizers --------------------------------------------------------------------

class NfcNormalizer : public Normalizer {
 public:
  std::string Normalize(std::string_view text) const override { return NfcNormalize(text); }
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  std::string Normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& step : steps_) s = step->Normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// --- Pre-tokenizers -----------------------------------------------------------------

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Hugging Face's NormalizedString::split: the text is cut into alternating match / gap
// spans, `invert` swaps their roles, and `behavior` decides what happens to the matches.
std::vector<std::string> SplitPiece(std::string_view text, const std::vector<Span>& matches,
                                    SplitBehavior behavior, bool invert) {
  std::vector<std::pair<Span, bool>> parts;  // (span, is_match)
  size_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.first) parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev != text.size()) parts.push_back({{prev, text.size()}, invert});

  std::vector<Span> kept;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& [span, is_match] : parts) {
        if (!is_match) kept.push_back(span);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const auto& part : parts) kept.push_back(part.first);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& [span, is_match] : parts) {
        if (is_match && !previous_match && !kept.empty()) {
          kept.back().second = span.second;
        } else {
          kept.push_back(span);
        }
        previous_match = is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous_match && !kept.empty()) {
          kept.back().first = it->first.first;
        } else {
          kept.push_back(it->first);
        }
        previous_match = it->second;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous:
      for (const auto& [span, is_match] : parts) {
        if (is_match == previous_match && !kept.empty()) {
          kept.back().second = span.second;
        } else {
          kept.push_back(span);
        }
        previous_match = is_match;
      }
      break;
  }
  std::vector<std::string> out;
  for (const Span& s : kept) {
    if (s.second > s.first) out.emplace_back(text.substr(s.first, s.second - s.first));
  }
  return out;
}

// Applies `split` to every piece in place.
template <typename F>
absl::Status SplitEach(std::vector<std::string>* pieces, F split) {
  std::vector<std::string> out;
  out.reserve(pieces->size());
  for (const std::string& piece : *pieces) {
    std::vector<std::string> sub;
    if (absl::Status s = split(piece, &sub); !s.ok()) return s;
    for (auto& p : sub) out.push_back(std::move(p));
  }
  *pieces = std::move(out);
  return absl::OkStatus();
}

class RegexSplit : public PreTokenizer {
 public:
  RegexSplit(std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, [this](const std::string& piece, std::vector<std::string>* out) {
      std::vector<Span> matches;
      if (absl::Status s = regex_->FindAll(piece, &matches); !s.ok()) return s;
      *out = SplitPiece(piece, matches, behavior_, invert_);
      return absl::OkStatus();
    });
  }

 private:
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

// Split with pattern {"String": "..."}: the literal string is the delimiter.
class LiteralSplit : public PreTokenizer {
 public:
  LiteralSplit(std::string literal, SplitBehavior behavior, bool invert)
      : literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, [this](const std::string& piece, std::vector<std::string>* out) {
      std::vector<Span> matches;
      for (size_t pos = piece.find(literal_); !literal_.empty() && pos != std::string::npos;
           pos = piece.find(literal_, pos + literal_.size())) {
        matches.emplace_back(pos, pos + literal_.size());
      }
      *out = SplitPiece(piece, matches, behavior_, invert_);
      return absl::OkStatus();
    });
  }

 private:
  std::string literal_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's pre-tokenization regex, used by ByteLevel when use_regex is true.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    return SplitEach(pieces, [this](const std::string& piece, std::vector<std::string>* out) {
      std::string text = piece;
      if (add_prefix_space_ && (text.empty() || text[0] != ' ')) text.insert(0, " ");
      std::vector<std::string> sub;
      if (regex_ != nullptr) {
        std::vector<Span> matches;
        if (absl::Status s = regex_->FindAll(text, &matches); !s.ok()) return s;
        sub = SplitPiece(text, matches, SplitBehavior::kIsolated, false);
      } else if (!text.empty()) {
        sub.push_back(std::move(text));
      }
      for (const std::string& s : sub) out->push_back(BytesToByteLevel(s));
      return absl::OkStatus();
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;  // nullptr when use_regex is false
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status PreTokenize(std::vector<std::string>* pieces) const override {
    for (const auto& step : steps_) {
      if (absl::Status s = step->PreTokenize(pieces); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<SplitBehavior> ParseBehavior(const json& j) {
  const std::string name = j.get<std::string>();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(absl::StrCat("unknown Split behavior \"", name, "\""));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeRegexSplit(const std::string& pattern,
                                                             SplitBehavior behavior,
                                                             bool invert) {
  absl::StatusOr<std::unique_ptr<Regex>> regex = Regex::Compile(pattern);
  if (!regex.ok()) return regex.status();
  return std::make_unique<RegexSplit>(std::move(*regex), behavior, invert);
}

// --- Decoders -----------------------------------------------------------------------

class ByteLevelDecoder : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) AppendByteLevelDecoded(token, &bytes);
    return {std::move(bytes)};
  }
};

class FuseDecoder : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    return {std::move(all)};
  }
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->DecodeChain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

bool IsAlphanumeric(char32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) != 0;
  static const Regex* const alnum = Regex::Compile(R"(^[\p{Alphabetic}\p{N}])")->release();
  std::string utf8;
  AppendUtf8(cp, &utf8);
  std::vector<Span> matches;
  return alnum->FindAll(utf8, &matches).ok() && !matches.empty();
}

bool IsWhitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

absl::StatusOr<std::unique_ptr<Normalizer>> MakeNormalizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = TypeOf(j);
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const json& step : j.at("normalizers")) {
      absl::StatusOr<std::unique_ptr<Normalizer>> n = MakeNormalizer(step);
      if (!n.ok()) return n.status();
      if (*n != nullptr) steps.push_back(std::move(*n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  return absl::UnimplementedError(absl::StrCat("normalizer type \"", type, "\" is not supported"));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& step : j.at("pretokenizers")) {
      absl::StatusOr<std::unique_ptr<PreTokenizer>> p = MakePreTokenizer(step);
      if (!p.ok()) return p.status();
      if (*p != nullptr) steps.push_back(std::move(*p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    absl::StatusOr<SplitBehavior> behavior = ParseBehavior(j.at("behavior"));
    if (!behavior.ok()) return behavior.status();
    const bool invert = j.value("invert", false);
    const json& pattern = j.at("pattern");
    if (pattern.contains("Regex")) {
      return MakeRegexSplit(pattern["Regex"].get<std::string>(), *behavior, invert);
    }
    if (pattern.contains("String")) {
      return std::make_unique<LiteralSplit>(pattern["String"].get<std::string>(), *behavior,
                                            invert);
    }
    return absl::InvalidArgumentError("Split pattern is neither {\"Regex\"} nor {\"String\"}");
  }
  if (type == "ByteLevel") {
    std::unique_ptr<Regex> regex;
    if (j.value("use_regex", true)) {
      absl::StatusOr<std::unique_ptr<Regex>> r = Regex::Compile(kGpt2Pattern);
      if (!r.ok()) return r.status();
      regex = std::move(*r);
    }
    return std::make_unique<ByteLevelPreTokenizer>(j.value("add_prefix_space", true),
                                                   std::move(regex));
  }
  // These are regex splits in Hugging Face too (Whitespace: \w+|[^\w\s]+, kept).
  if (type == "Whitespace") return MakeRegexSplit(R"(\w+|[^\w\s]+)", SplitBehavior::kRemoved, true);
  if (type == "WhitespaceSplit") return MakeRegexSplit(R"(\s+)", SplitBehavior::kRemoved, false);
  if (type == "Digits") {
    return j.value("individual_digits", false)
               ? MakeRegexSplit(R"(\p{N})", SplitBehavior::kIsolated, false)
               : MakeRegexSplit(R"(\p{N}+)", SplitBehavior::kIsolated, false);
  }
  return absl::UnimplementedError(
      absl::StrCat("pre_tokenizer type \"", type, "\" is not supported"));
}

absl::StatusOr<std::unique_ptr<Decoder>> MakeDecoder(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = TypeOf(j);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const json& step : j.at("decoders")) {
      absl::StatusOr<std::unique_ptr<Decoder>> d = MakeDecoder(step);
      if (!d.ok()) return d.status();
      if (*d != nullptr) steps.push_back(std::move(*d));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  return absl::UnimplementedError(absl::StrCat("decoder type \"", type, "\" is not supported"));
}

}  // namespace hone::internal
