// Tokenizers: text <-> token ids, loaded from Hugging Face `tokenizer.json` files.
//
// Supported: byte-level BPE as shipped with GPT-2, Llama-3 and Qwen2/2.5/3 (normalizer
// NFC / Sequence / none; pre-tokenizers Split, ByteLevel, Whitespace, WhitespaceSplit,
// Digits, Sequence; decoders ByteLevel, Fuse, Sequence), and WordLevel models such as the
// char-level tokenizer MakeCharLevelTokenizerJson writes for the project's small models.
// A file using anything else fails to load with a Status naming the unsupported part,
// rather than encoding differently from Hugging Face. The post_processor is ignored:
// Encode never adds special tokens (BOS, chat markers); callers add them explicitly.
//
// This library does not depend on torch, so CPU-only roles (reward, controller) link it
// cheaply.
//
// Example:
//   absl::StatusOr<std::unique_ptr<hone::Tokenizer>> tok =
//       hone::LoadTokenizer("models/qwen3/tokenizer.json");
//   if (!tok.ok()) return tok.status();
//   absl::StatusOr<std::vector<int64_t>> ids = (*tok)->Encode("Hello world");
//   std::optional<int64_t> eos = (*tok)->TokenToId("<|endoftext|>");
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace hone {

// Thread safety: all methods are const and safe to call concurrently from many threads on
// one instance (the BPE word cache is internally synchronised).
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Returns the ids of `text`, exactly as Hugging Face `tokenizers` encodes it with
  // add_special_tokens=False. Added tokens (e.g. "<|im_start|>") occurring in the text are
  // matched first, longest match first, and map to their single id. Returns
  // InvalidArgument when `text` is not valid UTF-8, or when a piece has no id and the model
  // has no unknown token (WordLevel without unk_token): nothing is silently dropped.
  virtual absl::StatusOr<std::vector<int64_t>> Encode(std::string_view text) const = 0;

  // Returns the bytes the ids stand for (special tokens are rendered as their text;
  // filter them with IsSpecialToken first to drop them). Byte-level BPE decodes each token
  // to its raw bytes, so a slice of ids that cuts a multi-byte character yields invalid
  // UTF-8 here, where Hugging Face would substitute U+FFFD; concatenating the decodes of
  // consecutive slices gives the same bytes as decoding the whole. An id that is not in
  // the vocabulary (negative, >= VocabSize(), e.g. a padded embedding row a model may
  // sample, or a hole) decodes to nothing, as in Hugging Face `tokenizers`: decoding is
  // never an error for unknown ids.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int64_t> ids) const = 0;

  // Number of ids, counting added tokens: one more than the largest id. (A model's
  // embedding table may be larger; take that size from the model config.)
  virtual int64_t VocabSize() const = 0;

  // The id of the token whose text (in the vocabulary's own spelling, e.g. "Ġthe" for byte
  // level BPE) is `token`, or nullopt. Added tokens take precedence. Use it for special ids:
  // TokenToId("<|endoftext|>"), TokenToId("<pad>").
  virtual std::optional<int64_t> TokenToId(std::string_view token) const = 0;

  // The vocabulary spelling of `id`, or nullopt when `id` is not in the vocabulary.
  virtual std::optional<std::string> IdToToken(int64_t id) const = 0;

  // True when `id` is an added token marked "special" (e.g. <|endoftext|>, <|im_end|>).
  virtual bool IsSpecialToken(int64_t id) const = 0;
};

// Loads a Hugging Face tokenizer.json. `path` may also name a directory that holds one.
// Errors (NotFound, InvalidArgument for malformed JSON, Unimplemented for unsupported
// components) name the file.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path);

// As LoadTokenizer, from the JSON text of a tokenizer.json.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromJson(std::string_view json_text);

// Writes the tokenizer.json of a char-level WordLevel tokenizer, loadable both here and by
// Hugging Face `tokenizers` (>= 0.14): every UTF-8 character of the input becomes one
// token. Ids: special_tokens get 0..S-1 in the given order, then symbols get S.. in the
// given order. Special tokens are registered as added tokens, so "<|endoftext|>" inside
// text encodes to its one id. When `unk_token` is non-empty it must be one of
// special_tokens and unknown characters encode to it; when empty, encoding an unknown
// character is an error. Each symbol must be exactly one UTF-8 character; duplicates
// (including a symbol equal to a special token) are InvalidArgument.
absl::StatusOr<std::string> MakeCharLevelTokenizerJson(
    const std::vector<std::string>& symbols, const std::vector<std::string>& special_tokens,
    std::string_view unk_token = "");

}  // namespace hone
