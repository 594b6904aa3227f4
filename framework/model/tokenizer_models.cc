// The "model" stage: BPE (merge by rank, as Hugging Face's bpe/word.rs) and WordLevel.
#include <limits>
#include <mutex>
#include <queue>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "framework/model/tokenizer_pipeline.h"
#include "framework/model/unicode_nfc.h"

namespace hone::internal {
namespace {

using json = nlohmann::json;

// Token <-> id maps shared by both models. Ids may have gaps.
class Vocabulary {
 public:
  static constexpr int64_t kMaxIdGap = int64_t{1} << 20;

  absl::Status Parse(const json& vocab) {
    if (!vocab.is_object()) return absl::InvalidArgumentError("model.vocab is not an object");
    token_to_id_.reserve(vocab.size());
    // Ids index a dense table: a few entries with an id near 2^31 would ask for tens of GB
    // (found by the tokenizer_json fuzzer). Real vocabularies number their entries 0..N-1,
    // with gaps at most; allow a generous gap beyond the entry count.
    const int64_t id_limit = static_cast<int64_t>(vocab.size()) + kMaxIdGap;
    for (const auto& [token, id_json] : vocab.items()) {
      if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 || id_json.get<int64_t>() >= id_limit) {
        return absl::InvalidArgumentError(absl::StrCat("model.vocab[\"", token, "\"] is not a valid id (ids are 0 to ",
                                                       id_limit - 1, " for ", vocab.size(), " entries)"));
      }
      const int64_t id = id_json.get<int64_t>();
      token_to_id_[token] = id;
      if (id >= static_cast<int64_t>(id_to_token_.size())) {
        id_to_token_.resize(id + 1);
        has_id_.resize(id + 1, false);
      }
      id_to_token_[id] = token;
      has_id_[id] = true;
    }
    return absl::OkStatus();
  }
  std::optional<int64_t> Find(std::string_view token) const {
    auto it = token_to_id_.find(ToAbsl(token));
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* Token(int64_t id) const {
    if (id < 0 || id >= static_cast<int64_t>(id_to_token_.size()) || !has_id_[id]) return nullptr;
    return &id_to_token_[id];
  }
  int64_t Limit() const { return static_cast<int64_t>(id_to_token_.size()); }

 private:
  absl::flat_hash_map<std::string, int64_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
};

// The unk token applies only when it is in the vocabulary; otherwise an unknown piece is an
// error (Hugging Face also fails there, "unk token out of vocabulary").
std::optional<int64_t> FindUnk(const json& model, const Vocabulary& vocab) {
  if (!model.contains("unk_token") || !model["unk_token"].is_string()) return std::nullopt;
  return vocab.Find(model["unk_token"].get<std::string>());
}

absl::Status NoTokenError(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("no token for \"", ToAbsl(what), "\" and the tokenizer has no unk_token"));
}

class BpeModel : public Model {
 public:
  absl::Status Init(const json& j) {
    for (const char* unsupported : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (j.contains(unsupported) && j[unsupported].is_string() &&
          !j[unsupported].get<std::string>().empty()) {
        return absl::UnimplementedError(absl::StrCat("BPE ", unsupported, " is not supported"));
      }
    }
    if (j.value("byte_fallback", false)) {
      return absl::UnimplementedError("BPE byte_fallback is not supported");
    }
    if (j.contains("dropout") && j["dropout"].is_number() && j["dropout"].get<double>() > 0) {
      return absl::UnimplementedError("BPE dropout is not supported");
    }
    if (absl::Status s = vocab_.Parse(j.at("vocab")); !s.ok()) return s;
    unk_ = FindUnk(j, vocab_);
    fuse_unk_ = j.value("fuse_unk", false);
    ignore_merges_ = j.value("ignore_merges", false);
    const json& merges = j.at("merges");
    if (!merges.is_array()) return absl::InvalidArgumentError("model.merges is not an array");
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& m = merges[rank];
      std::string a, b;
      if (m.is_string()) {  // "a b" (older files)
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat("merge #", rank, " \"", s,
                                                         "\" is not two space-separated tokens"));
        }
        a = s.substr(0, space), b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2) {  // ["a", "b"] (tokenizers >= 0.20)
        a = m[0].get<std::string>(), b = m[1].get<std::string>();
      } else {
        return absl::InvalidArgumentError(absl::StrCat("merge #", rank, " is malformed"));
      }
      std::optional<int64_t> ia = vocab_.Find(a), ib = vocab_.Find(b), ic = vocab_.Find(a + b);
      if (!ia || !ib || !ic) {
        return absl::InvalidArgumentError(absl::StrCat(
            "merge #", rank, " (\"", a, "\", \"", b, "\") uses a token not in the vocabulary"));
      }
      // A repeated pair takes its last rank, as Hugging Face's map construction does.
      merges_[Key(*ia, *ib)] = {static_cast<int32_t>(rank), *ic};
    }
    return absl::OkStatus();
  }

  absl::Status Tokenize(std::string_view piece, std::vector<int64_t>* ids) const override {
    if (ignore_merges_) {
      if (std::optional<int64_t> id = vocab_.Find(piece)) {
        ids->push_back(*id);
        return absl::OkStatus();
      }
    }
    const bool cacheable = piece.size() < kMaxCachedLength;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(ToAbsl(piece));
      if (it != cache_.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return absl::OkStatus();
      }
    }
    std::vector<int64_t> word;
    if (absl::Status s = MergeWord(piece, &word); !s.ok()) return s;
    ids->insert(ids->end(), word.begin(), word.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();  // Cheap bound on memory.
      cache_.emplace(std::string(piece), std::move(word));
    }
    return absl::OkStatus();
  }

  std::optional<int64_t> TokenToId(std::string_view token) const override {
    return vocab_.Find(token);
  }
  const std::string* IdToToken(int64_t id) const override { return vocab_.Token(id); }
  int64_t IdLimit() const override { return vocab_.Limit(); }

 private:
  static constexpr size_t kMaxCachedLength = 256;
  static constexpr size_t kMaxCacheEntries = 1 << 17;

  static uint64_t Key(int64_t a, int64_t b) {
    return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
  }

  struct Merge {
    int32_t rank;
    int64_t new_id;
  };

  // Starts from one symbol per character and applies the lowest-ranked available merge
  // (leftmost on ties) until none applies: a heap over candidate pairs keeps long pieces
  // (whitespace runs, long numbers) O(n log n) instead of quadratic.
  absl::Status MergeWord(std::string_view piece, std::vector<int64_t>* out) const {
    struct Symbol {
      int64_t id;
      int prev, next;
      bool alive;
    };
    std::vector<Symbol> symbols;
    bool last_was_unk = false;
    for (size_t pos = 0; pos < piece.size();) {
      const size_t start = pos;
      NextCodePoint(piece, &pos);
      const std::string_view ch = piece.substr(start, pos - start);
      std::optional<int64_t> id = vocab_.Find(ch);
      const bool is_unk = !id.has_value();
      if (is_unk) {
        if (!unk_) return NoTokenError(ch);
        if (fuse_unk_ && last_was_unk) continue;
        id = unk_;
      }
      last_was_unk = is_unk;
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({*id, index - 1, index + 1, true});
    }
    if (symbols.empty()) return absl::OkStatus();
    symbols.back().next = -1;

    struct Candidate {
      int32_t rank;
      int pos;
      int64_t new_id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    auto push_pair = [&](int left) {
      const int right = symbols[left].next;
      if (left < 0 || right < 0) return;
      auto it = merges_.find(Key(symbols[left].id, symbols[right].id));
      if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
    };
    for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) push_pair(i);
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      auto it = merges_.find(Key(left.id, right.id));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // Stale entry.
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (left.next >= 0) symbols[left.next].prev = top.pos;
      if (left.prev >= 0) push_pair(left.prev);
      push_pair(top.pos);
    }
    for (const Symbol& s : symbols) {
      if (s.alive) out->push_back(s.id);
    }
    return absl::OkStatus();
  }

  Vocabulary vocab_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::optional<int64_t> unk_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  mutable std::mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int64_t>> cache_;
};

class WordLevelModel : public Model {
 public:
  absl::Status Init(const json& j) {
    if (absl::Status s = vocab_.Parse(j.at("vocab")); !s.ok()) return s;
    unk_ = FindUnk(j, vocab_);
    return absl::OkStatus();
  }
  absl::Status Tokenize(std::string_view piece, std::vector<int64_t>* ids) const override {
    std::optional<int64_t> id = vocab_.Find(piece);
    if (!id) id = unk_;
    if (!id) return NoTokenError(piece);
    ids->push_back(*id);
    return absl::OkStatus();
  }
  std::optional<int64_t> TokenToId(std::string_view token) const override {
    return vocab_.Find(token);
  }
  const std::string* IdToToken(int64_t id) const override { return vocab_.Token(id); }
  int64_t IdLimit() const override { return vocab_.Limit(); }

 private:
  Vocabulary vocab_;
  std::optional<int64_t> unk_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> MakeModel(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("\"model\" is missing or not an object");
  // Older files omit model.type; BPE is then recognised by its merges.
  std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                     : j.contains("merges")                       ? "BPE"
                                                                  : "";
  if (type == "BPE") {
    auto model = std::make_unique<BpeModel>();
    if (absl::Status s = model->Init(j); !s.ok()) return s;
    return model;
  }
  if (type == "WordLevel") {
    auto model = std::make_unique<WordLevelModel>();
    if (absl::Status s = model->Init(j); !s.ok()) return s;
    return model;
  }
  return absl::UnimplementedError(absl::StrCat("model type \"", type,
                                               "\" is not supported (only BPE and WordLevel)"));
}

}  // namespace hone::internal
