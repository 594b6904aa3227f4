// The tokenizer proper: added tokens around the normalizer -> pre-tokenizer -> model
// pipeline of tokenizer_pipeline.h, plus loading and the char-level tokenizer writer.
#include "framework/model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/json_depth.h"
#include "framework/model/tokenizer_pipeline.h"
#include "framework/model/unicode_nfc.h"
#include "nlohmann/json.hpp"

namespace hone {
namespace {

using json = nlohmann::json;
using internal::NextCodePoint;

// Far deeper than any real tokenizer.json (a few levels).
constexpr int kMaxJsonDepth = 128;

struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A stretch of text that is either one added token or plain text for the pipeline.
struct Segment {
  std::string_view text;
  const AddedToken* token = nullptr;
};

// Finds added tokens in text the way Hugging Face's AddedVocabulary does with its
// leftmost-longest Aho-Corasick automaton: at the leftmost position where any token
// starts, the longest one wins; a match its single_word rule rejects is skipped whole.
class AddedTokenMatcher {
 public:
  void Add(const AddedToken* token) {
    if (token->content.empty()) return;
    auto& bucket = by_first_byte_[static_cast<unsigned char>(token->content[0])];
    bucket.push_back(token);
    std::stable_sort(bucket.begin(), bucket.end(), [](const AddedToken* a, const AddedToken* b) {
      return a->content.size() > b->content.size();
    });
    empty_ = false;
  }

  std::vector<Segment> Split(std::string_view text) const {
    std::vector<Segment> out;
    size_t done = 0;  // Text before `done` is already in `out`.
    for (size_t i = 0; !empty_ && i < text.size();) {
      const AddedToken* match = nullptr;
      for (const AddedToken* t : by_first_byte_[static_cast<unsigned char>(text[i])]) {
        if (text.compare(i, t->content.size(), t->content) == 0) {
          match = t;
          break;
        }
      }
      if (match == nullptr) {
        ++i;
        continue;
      }
      size_t start = i, stop = i + match->content.size();
      i = stop;
      if (match->single_word && (EndsWithWordChar(text.substr(0, start)) ||
                                 StartsWithWordChar(text.substr(stop)))) {
        continue;
      }
      if (match->lstrip) {
        while (start > done && internal::IsWhitespace(LastCodePoint(text.substr(0, start)))) {
          start -= CodePointLength(text.substr(0, start));
        }
      }
      if (match->rstrip) {
        while (stop < text.size()) {
          size_t next = stop;
          if (!internal::IsWhitespace(NextCodePoint(text, &next))) break;
          stop = next;
        }
        i = stop;
      }
      if (done < start) out.push_back({text.substr(done, start - done), nullptr});
      out.push_back({text.substr(start, stop - start), match});
      done = stop;
    }
    if (done < text.size()) out.push_back({text.substr(done), nullptr});
    return out;
  }

 private:
  // Byte length of the last UTF-8 character of non-empty `s`.
  static size_t CodePointLength(std::string_view s) {
    size_t n = 1;
    while (n < s.size() && (static_cast<unsigned char>(s[s.size() - n]) & 0xC0) == 0x80) ++n;
    return n;
  }
  static char32_t LastCodePoint(std::string_view s) {
    size_t pos = s.size() - CodePointLength(s);
    return NextCodePoint(s, &pos);
  }
  static bool EndsWithWordChar(std::string_view s) {
    return !s.empty() && internal::IsAlphanumeric(LastCodePoint(s));
  }
  static bool StartsWithWordChar(std::string_view s) {
    size_t pos = 0;
    return !s.empty() && internal::IsAlphanumeric(NextCodePoint(s, &pos));
  }

  std::array<std::vector<const AddedToken*>, 256> by_first_byte_;
  bool empty_ = true;
};

class PipelineTokenizer : public Tokenizer {
 public:
  absl::Status Init(const json& root) {
    if (!root.is_object()) return absl::InvalidArgumentError("top level is not a JSON object");
    if (!root.contains("model")) return absl::InvalidArgumentError("no \"model\" section");
    auto normalizer = internal::MakeNormalizer(root.value("normalizer", json()));
    if (!normalizer.ok()) return normalizer.status();
    normalizer_ = std::move(*normalizer);
    auto pre_tokenizer = internal::MakePreTokenizer(root.value("pre_tokenizer", json()));
    if (!pre_tokenizer.ok()) return pre_tokenizer.status();
    pre_tokenizer_ = std::move(*pre_tokenizer);
    auto model = internal::MakeModel(root["model"]);
    if (!model.ok()) return model.status();
    model_ = std::move(*model);
    auto decoder = internal::MakeDecoder(root.value("decoder", json()));
    if (!decoder.ok()) return decoder.status();
    decoder_ = std::move(*decoder);

    const json added = root.value("added_tokens", json::array());
    if (!added.is_array()) return absl::InvalidArgumentError("\"added_tokens\" is not an array");
    added_.reserve(added.size());  // Matchers keep pointers into added_.
    for (const json& a : added) {
      AddedToken t;
      // get<int64_t>() of a float such as 1e300 would be undefined behaviour.
      if (!a.at("id").is_number_integer()) {
        return absl::InvalidArgumentError(absl::StrCat("added token ", a.dump(), ": id is not an integer"));
      }
      t.id = a.at("id").get<int64_t>();
      t.content = a.at("content").get<std::string>();
      t.single_word = a.value("single_word", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.special = a.value("special", false);
      t.normalized = a.value("normalized", !t.special);
      if (t.id < 0 || !internal::IsValidUtf8(t.content)) {
        return absl::InvalidArgumentError(absl::StrCat("added token ", a.dump(), " is invalid"));
      }
      added_.push_back(std::move(t));
    }
    for (const AddedToken& t : added_) {
      (t.normalized && normalizer_ != nullptr ? normalized_matcher_ : raw_matcher_).Add(&t);
      added_by_id_[t.id] = &t;
      added_by_content_[t.content] = &t;
      vocab_size_ = std::max(vocab_size_, t.id + 1);
    }
    vocab_size_ = std::max(vocab_size_, model_->IdLimit());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<int64_t>> Encode(std::string_view text) const override {
    if (!internal::IsValidUtf8(text)) {
      return absl::InvalidArgumentError("text to encode is not valid UTF-8");
    }
    std::vector<int64_t> ids;
    ids.reserve(text.size() / 3 + 1);
    for (const Segment& raw : raw_matcher_.Split(text)) {
      if (raw.token != nullptr) {
        ids.push_back(raw.token->id);
        continue;
      }
      const std::string normalized =
          normalizer_ != nullptr ? normalizer_->Normalize(raw.text) : std::string(raw.text);
      for (const Segment& seg : normalized_matcher_.Split(normalized)) {
        if (seg.token != nullptr) {
          ids.push_back(seg.token->id);
          continue;
        }
        std::vector<std::string> pieces = {std::string(seg.text)};
        if (pre_tokenizer_ != nullptr) {
          if (absl::Status s = pre_tokenizer_->PreTokenize(&pieces); !s.ok()) return s;
        }
        for (const std::string& piece : pieces) {
          if (absl::Status s = model_->Tokenize(piece, &ids); !s.ok()) return s;
        }
      }
    }
    return ids;
  }

  absl::StatusOr<std::string> Decode(absl::Span<const int64_t> ids) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int64_t id : ids) {
      // An id without a spelling (a padded embedding row past the tokenizer, a hole in
      // the vocabulary) decodes to nothing, as Hugging Face `tokenizers` skips it.
      if (const std::string* token = Spelling(id)) tokens.push_back(*token);
    }
    // Without a decoder Hugging Face joins tokens with spaces.
    if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
    return absl::StrJoin(decoder_->DecodeChain(std::move(tokens)), "");
  }

  int64_t VocabSize() const override { return vocab_size_; }

  std::optional<int64_t> TokenToId(std::string_view token) const override {
    auto it = added_by_content_.find(internal::ToAbsl(token));
    if (it != added_by_content_.end()) return it->second->id;
    return model_->TokenToId(token);
  }

  std::optional<std::string> IdToToken(int64_t id) const override {
    const std::string* token = Spelling(id);
    if (token == nullptr) return std::nullopt;
    return *token;
  }

  bool IsSpecialToken(int64_t id) const override {
    auto it = added_by_id_.find(id);
    return it != added_by_id_.end() && it->second->special;
  }

 private:
  const std::string* Spelling(int64_t id) const {
    auto it = added_by_id_.find(id);
    return it != added_by_id_.end() ? &it->second->content : model_->IdToToken(id);
  }

  std::unique_ptr<internal::Normalizer> normalizer_;
  std::unique_ptr<internal::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<internal::Model> model_;
  std::unique_ptr<internal::Decoder> decoder_;
  std::vector<AddedToken> added_;
  AddedTokenMatcher raw_matcher_;         // matched in the text as given
  AddedTokenMatcher normalized_matcher_;  // matched after normalisation ("normalized": true)
  absl::flat_hash_map<int64_t, const AddedToken*> added_by_id_;
  absl::flat_hash_map<std::string, const AddedToken*> added_by_content_;
  int64_t vocab_size_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromJson(std::string_view json_text) {
  if (JsonDeeperThan(json_text, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON: nested deeper than ", kMaxJsonDepth, " levels"));
  }
  // nlohmann reports errors by exception; none may leave this library.
  try {
    json root = json::parse(json_text.begin(), json_text.end());
    auto tokenizer = std::make_unique<PipelineTokenizer>();
    if (absl::Status s = tokenizer->Init(root); !s.ok()) return s;
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", e.what()));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected tokenizer.json content: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path) {
  std::error_code ec;
  const std::string file =
      std::filesystem::is_directory(path, ec) ? path + "/tokenizer.json" : path;
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  if (in) buffer << in.rdbuf();
  if (!in || in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read tokenizer file ", file, ": ", std::strerror(errno)));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = TokenizerFromJson(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(file, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::string> MakeCharLevelTokenizerJson(
    const std::vector<std::string>& symbols, const std::vector<std::string>& special_tokens,
    std::string_view unk_token) {
  using ordered_json = nlohmann::ordered_json;
  std::unordered_set<std::string> seen;
  ordered_json added = ordered_json::array();
  ordered_json vocab = ordered_json::object();
  int64_t next_id = 0;
  for (const std::string& s : special_tokens) {
    if (s.empty() || !internal::IsValidUtf8(s) || !seen.insert(s).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token \"", s, "\" is empty, invalid UTF-8 or repeated"));
    }
    added.push_back({{"id", next_id},     {"content", s},       {"single_word", false},
                     {"lstrip", false},   {"rstrip", false},    {"normalized", false},
                     {"special", true}});
    vocab[s] = next_id++;
  }
  for (const std::string& s : symbols) {
    bool one_char = !s.empty() && internal::IsValidUtf8(s);
    if (one_char) {
      size_t end = 0;
      NextCodePoint(s, &end);
      one_char = end == s.size();
    }
    if (!one_char || !seen.insert(s).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("symbol \"", s, "\" is not exactly one UTF-8 character, or is repeated"));
    }
    vocab[s] = next_id++;
  }
  if (!unk_token.empty() && std::find(special_tokens.begin(), special_tokens.end(),
                                      unk_token) == special_tokens.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unk_token \"", internal::ToAbsl(unk_token), "\" is not one of the special tokens"));
  }
  ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      // Every character is its own piece. "[\s\S]" rather than "." because "." skips
      // newlines in Oniguruma, which Hugging Face uses.
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "[\\s\\S]"}}}, {"behavior", "Isolated"},
        {"invert", false}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Fuse"}}},
      // An empty unk_token can never be in the vocabulary: unknown characters are errors.
      {"model", {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", std::string(unk_token)}}},
  };
  return root.dump(2);
}

}  // namespace hone
