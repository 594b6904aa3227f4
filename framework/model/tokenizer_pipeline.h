// The stages of a Hugging Face tokenizer, built from the matching sections of tokenizer.json
// (internal to hone_tokenizer; the public interface is tokenizer.h). Each stage follows the
// semantics of the Rust `tokenizers` crate, since ids must match it exactly.
//
// The builders take parsed JSON and may throw nlohmann::json exceptions on wrongly typed
// fields; TokenizerFromJson catches those at the library boundary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace hone::internal {

// This abseil build has its own string_view type (ABSL_OPTION_USE_STD_STRING_VIEW 0), so
// std::string_view must be converted for StrCat and heterogeneous hash-map lookups.
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

// The "normalizer" section.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // REQUIRES: `text` is valid UTF-8.
  virtual std::string Normalize(std::string_view text) const = 0;
};

// The "pre_tokenizer" section: splits text into the pieces the model tokenizes separately.
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece by its sub-pieces, in order; empty pieces are dropped.
  // Fails only when the regex engine gives up (match limit), which it reports.
  virtual absl::Status PreTokenize(std::vector<std::string>* pieces) const = 0;
};

// The "model" section: vocabulary, and how one pre-tokenized piece becomes ids.
class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `piece`. Fails when a character has no id and there is no unk_token.
  virtual absl::Status Tokenize(std::string_view piece, std::vector<int64_t>* ids) const = 0;
  virtual std::optional<int64_t> TokenToId(std::string_view token) const = 0;
  // nullptr when `id` is not in the vocabulary.
  virtual const std::string* IdToToken(int64_t id) const = 0;
  // One more than the largest id in the vocabulary.
  virtual int64_t IdLimit() const = 0;
};

// The "decoder" section, as Hugging Face's decode_chain: tokens in, strings out; the final
// text is the concatenation of the output.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const = 0;
};

// Rust's char::is_alphanumeric (Unicode Alphabetic or Numeric), for the added tokens'
// single_word rule.
bool IsAlphanumeric(char32_t cp);

// Rust's char::is_whitespace (Unicode White_Space), for added tokens' lstrip / rstrip.
bool IsWhitespace(char32_t cp);

// Each builder returns nullptr for a JSON null (stage absent), Unimplemented for a type
// this library does not implement, and InvalidArgument for inconsistent content.
absl::StatusOr<std::unique_ptr<Normalizer>> MakeNormalizer(const nlohmann::json& j);
absl::StatusOr<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const nlohmann::json& j);
absl::StatusOr<std::unique_ptr<Model>> MakeModel(const nlohmann::json& j);
absl::StatusOr<std::unique_ptr<Decoder>> MakeDecoder(const nlohmann::json& j);

}  // namespace hone::internal
