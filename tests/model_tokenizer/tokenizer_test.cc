// Tokenizer tests. The Qwen3 checks compare against ids an independent implementation
// produced (tests/fixtures/qwen3_tokenizer.tar.xz: vectors.jsonl; see tests/fixtures/SOURCES.md).
#include "framework/model/tokenizer.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "framework/model/unicode_nfc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_data.h"
#include "nlohmann/json.hpp"

namespace hone {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

// The unpacked external test data (tests/support/test_data.h).
using testing_support::TestDataDir;

std::string Qwen3Dir() { return TestDataDir() + "/qwen3"; }

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string Join(const std::vector<int64_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
  return out.str();
}

// Loading the 11 MB Qwen3 file takes a moment, so the suite shares one instance.
class Qwen3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::is_directory(Qwen3Dir())) return;
    auto loaded = LoadTokenizer(Qwen3Dir() + "/tokenizer.json");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = loaded->release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::is_directory(Qwen3Dir()))
        << "test data not found in " << TestDataDir() << ": re-run cmake (it unpacks tests/fixtures)";
    ASSERT_NE(tokenizer_, nullptr);
  }
  std::vector<int64_t> Encode(std::string_view text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<int64_t>{};
  }

  static const Tokenizer* tokenizer_;
};
const Tokenizer* Qwen3Test::tokenizer_ = nullptr;

struct Vector {
  int line;
  std::string text;
  std::vector<int64_t> ids;
};

std::vector<Vector> ReadVectors() {
  std::vector<Vector> vectors;
  int line_no = 0;
  for (const std::string& line : ReadLines(Qwen3Dir() + "/vectors.jsonl")) {
    json j = json::parse(line);
    vectors.push_back({++line_no, j.at("text").get<std::string>(),
                       j.at("ids").get<std::vector<int64_t>>()});
  }
  return vectors;
}

TEST_F(Qwen3Test, EveryReferenceVectorMatches) {
  const std::vector<Vector> vectors = ReadVectors();
  ASSERT_GT(vectors.size(), 100u);
  int matched = 0;
  for (const Vector& v : vectors) {
    const std::vector<int64_t> ids = Encode(v.text);
    if (ids == v.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << "vectors.jsonl line " << v.line << " mismatch for text "
                    << json(v.text).dump() << "\n  expected: " << Join(v.ids)
                    << "\n  got:      " << Join(ids);
    }
  }
  std::cout << "[ INFO     ] " << matched << "/" << vectors.size()
            << " Qwen3 reference vectors matched\n";
  EXPECT_EQ(matched, static_cast<int>(vectors.size()));
}

TEST_F(Qwen3Test, DecodeInvertsEncodeOnEveryVector) {
  for (const Vector& v : ReadVectors()) {
    auto text = tokenizer_->Decode(v.ids);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, v.text) << "vectors.jsonl line " << v.line;
    auto round_trip = tokenizer_->Decode(Encode(v.text));
    ASSERT_TRUE(round_trip.ok()) << round_trip.status();
    EXPECT_EQ(*round_trip, v.text) << "vectors.jsonl line " << v.line;
  }
}

TEST_F(Qwen3Test, VocabularyAndSpecialTokenLookups) {
  EXPECT_EQ(tokenizer_->VocabSize(), 151669);  // 151643 base + 26 added
  EXPECT_EQ(tokenizer_->TokenToId("<|endoftext|>"), 151643);
  EXPECT_EQ(tokenizer_->TokenToId("<|im_start|>"), 151644);
  EXPECT_EQ(tokenizer_->TokenToId("<|im_end|>"), 151645);
  EXPECT_EQ(tokenizer_->TokenToId("Hello"), 9707);
  EXPECT_EQ(tokenizer_->TokenToId("Ġworld"), 1879);  // byte-level spelling of " world"
  EXPECT_EQ(tokenizer_->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tokenizer_->IdToToken(9707), "Hello");
  EXPECT_EQ(tokenizer_->IdToToken(151645), "<|im_end|>");
  EXPECT_EQ(tokenizer_->IdToToken(151669), std::nullopt);
  EXPECT_EQ(tokenizer_->IdToToken(-1), std::nullopt);
  EXPECT_TRUE(tokenizer_->IsSpecialToken(151645));
  EXPECT_FALSE(tokenizer_->IsSpecialToken(9707));
  const std::optional<int64_t> think = tokenizer_->TokenToId("<think>");
  ASSERT_TRUE(think.has_value());
  EXPECT_FALSE(tokenizer_->IsSpecialToken(*think));  // added but not special
}

TEST_F(Qwen3Test, AddedTokensInsideTextMapToTheirSingleId) {
  const std::vector<int64_t> user = Encode("user\nHello world");
  std::vector<int64_t> expected = {151644};
  expected.insert(expected.end(), user.begin(), user.end());
  expected.push_back(151645);
  EXPECT_EQ(Encode("<|im_start|>user\nHello world<|im_end|>"), expected);
  EXPECT_THAT(Encode("Hello world"), ElementsAre(9707, 1879));  // as vectors.jsonl line 1
  EXPECT_THAT(Encode("<|im_end|><|im_end|>"), ElementsAre(151645, 151645));

  const int64_t think = *tokenizer_->TokenToId("<think>");
  const int64_t end_think = *tokenizer_->TokenToId("</think>");
  std::vector<int64_t> ids = Encode("<think>x</think>");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], think);
  EXPECT_EQ(ids[2], end_think);
  // An incomplete marker is ordinary text.
  EXPECT_GT(Encode("<|im_start").size(), 1u);
  auto text = tokenizer_->Decode(expected);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "<|im_start|>user\nHello world<|im_end|>");
}

TEST_F(Qwen3Test, DecomposedTextEncodesLikeItsNfcForm) {
  // vectors.jsonl line 11 is "Ünïcödé çåsé ñ ß Œ", precomposed. The same text with
  // combining marks must give the same ids, since Qwen's normalizer is NFC.
  const std::vector<Vector> vectors = ReadVectors();
  ASSERT_EQ(vectors[10].text, "\u00DCn\u00EFc\u00F6d\u00E9 \u00E7\u00E5s\u00E9 \u00F1 \u00DF \u0152");
  EXPECT_EQ(Encode("U\u0308ni\u0308co\u0308de\u0301 c\u0327a\u030Ase\u0301 n\u0303 \u00DF \u0152"),
            vectors[10].ids);
  EXPECT_EQ(Encode("\u212B"), Encode("\u00C5"));  // ANGSTROM SIGN is a singleton
}

TEST_F(Qwen3Test, RejectsInvalidUtf8AndDecodesUnknownIdsToNothing) {
  auto bad = tokenizer_->Encode("abc\xFF");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  // Ids past the tokenizer (a padded embedding row: Qwen's config.json says 151936) or
  // negative decode to nothing, as in Hugging Face `tokenizers`; never an error.
  ASSERT_EQ(tokenizer_->VocabSize(), 151669);
  auto decoded = tokenizer_->Decode({9707, 151669, 151935, -1, 1879});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, "Hello world");
  EXPECT_EQ(*tokenizer_->Decode({151769}), "");
  // Every id below VocabSize() has a spelling: the vocabulary has no holes, so the ids a
  // model may sample are exactly [0, VocabSize()).
  for (int64_t id = 0; id < tokenizer_->VocabSize(); ++id) {
    ASSERT_TRUE(tokenizer_->IdToToken(id).has_value()) << id;
  }
}

TEST_F(Qwen3Test, SlicesOfIdsDecodeToTheSplitBytes) {
  const std::string text = "emoji 😀 and 日本語";
  const std::vector<int64_t> ids = Encode(text);
  std::string joined;
  for (int64_t id : ids) joined += *tokenizer_->Decode({id});
  EXPECT_EQ(joined, text);
}

TEST_F(Qwen3Test, ConcurrentEncodingAgreesWithSerial) {
  const std::vector<Vector> vectors = ReadVectors();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (const Vector& v : vectors) {
          auto ids = tokenizer_->Encode(v.text);
          if (!ids.ok() || *ids != v.ids) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(failures, ElementsAre(0, 0, 0, 0));
}

TEST_F(Qwen3Test, TokenizesAllOfGsm8kQuicklyAndLosslessly) {
  int64_t texts = 0, tokens = 0;
  double seconds = 0;
  for (const char* split : {"train", "test"}) {
    const std::vector<std::string> lines = ReadLines(TestDataDir() + "/gsm8k/" + split + ".jsonl");
    ASSERT_FALSE(lines.empty()) << split;
    for (const std::string& line : lines) {
      const json j = json::parse(line);
      for (const char* field : {"question", "answer"}) {
        const std::string text = j.at(field).get<std::string>();
        const auto start = std::chrono::steady_clock::now();
        auto ids = tokenizer_->Encode(text);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ASSERT_TRUE(ids.ok()) << ids.status();
        ASSERT_EQ(*tokenizer_->Decode(*ids), text);
        ++texts;
        tokens += static_cast<int64_t>(ids->size());
      }
    }
  }
  std::cout << "[ INFO     ] GSM8K: " << texts << " texts, " << tokens << " tokens encoded in "
            << seconds << " s\n";
  EXPECT_LT(seconds, 20.0);  // A few seconds expected; generous for a loaded CI machine.
}

TEST(NfcTest, MatchesUnicodeExamples) {
  using internal::NfcNormalize;
  EXPECT_EQ(NfcNormalize("plain ASCII"), "plain ASCII");
  EXPECT_EQ(NfcNormalize("e\u0301"), "\u00E9");
  EXPECT_EQ(NfcNormalize("\u00E9"), "\u00E9");
  EXPECT_EQ(NfcNormalize("\u212B"), "\u00C5");                  // singleton
  EXPECT_EQ(NfcNormalize("\u1E0B\u0323"), "\u1E0D\u0307");      // reorder, then compose
  EXPECT_EQ(NfcNormalize("q\u0307\u0323"), "q\u0323\u0307");    // reorder only
  EXPECT_EQ(NfcNormalize("\u0344"), "\u0308\u0301");            // non-starter decomposition
  EXPECT_EQ(NfcNormalize("\u1100\u1161\u11A8"), "\uAC01");      // Hangul L V T
  EXPECT_EQ(NfcNormalize("\u304B\u3099"), "\u304C");            // kana + dakuten
  EXPECT_EQ(NfcNormalize("\u0301a"), "\u0301a");                // leading mark stays
  EXPECT_EQ(NfcNormalize("a\u0308\u0304"), "\u01DF");            // composes twice
  EXPECT_EQ(NfcNormalize("a\u0308\u0301"), "\u00E4\u0301");     // no composite for the 2nd
}

// A tokenizer.json written into a temporary file, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = (std::filesystem::temp_directory_path() /
             ("hone_tokenizer_test_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter_++) + ".json"))
                .string();
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(LoadTokenizerTest, MissingFileIsNotFoundNamingThePath) {
  auto t = LoadTokenizer("/nonexistent/dir/tokenizer.json");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/dir/tokenizer.json"));
}

TEST(LoadTokenizerTest, MalformedJsonIsInvalidArgumentNamingTheFile) {
  TempFile file("{\"model\": {\"type\": \"BPE\", ");
  auto t = LoadTokenizer(file.path());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(file.path()));
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("malformed JSON"));
}

TEST(LoadTokenizerTest, WrongTypesAndUnsupportedPartsAreErrors) {
  TempFile wrong_type(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})");
  auto t = LoadTokenizer(wrong_type.path());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(wrong_type.path()));

  auto unigram = TokenizerFromJson(R"({"model": {"type": "Unigram", "vocab": []}})");
  EXPECT_EQ(unigram.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(unigram.status().message()), HasSubstr("Unigram"));

  auto bad_merge = TokenizerFromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})");
  EXPECT_EQ(bad_merge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_merge.status().message()), HasSubstr("merge #0"));

  EXPECT_FALSE(TokenizerFromJson("[]").ok());
  EXPECT_FALSE(TokenizerFromJson("{}").ok());
}

// A hand-made BPE: merges apply by rank (lowest first), in either file format.
TEST(BpeTest, MergesApplyByRankInBothFormats) {
  const std::string vocab = R"({"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5})";
  auto ab_first = TokenizerFromJson(R"({"model": {"type": "BPE", "vocab": )" + vocab +
                                    R"(, "merges": ["a b", "ab c"]}})");
  ASSERT_TRUE(ab_first.ok()) << ab_first.status();
  EXPECT_THAT(*(*ab_first)->Encode("abc"), ElementsAre(5));
  auto bc_first = TokenizerFromJson(R"({"model": {"type": "BPE", "vocab": )" + vocab +
                                    R"(, "merges": [["b", "c"], ["a", "b"]]}})");
  ASSERT_TRUE(bc_first.ok()) << bc_first.status();
  EXPECT_THAT(*(*bc_first)->Encode("abc"), ElementsAre(0, 4));
  EXPECT_THAT(*(*bc_first)->Encode("abab"), ElementsAre(3, 3));
  // No pre-tokenizer and no unk token: an unknown character is an error, not dropped.
  EXPECT_EQ((*bc_first)->Encode("abx").status().code(), absl::StatusCode::kInvalidArgument);
  // No decoder: tokens are joined with spaces, as in Hugging Face.
  EXPECT_EQ(*(*bc_first)->Decode({0, 4}), "a bc");
}

TEST(CharLevelTest, RoundTripsThroughJson) {
  auto json_text = MakeCharLevelTokenizerJson({"a", "b", " ", "\n", "é", "日"},
                                              {"<pad>", "<|endoftext|>", "<unk>"}, "<unk>");
  ASSERT_TRUE(json_text.ok()) << json_text.status();
  TempFile file(*json_text);
  auto tok = LoadTokenizer(file.path());
  ASSERT_TRUE(tok.ok()) << tok.status();
  const Tokenizer& t = **tok;
  EXPECT_EQ(t.VocabSize(), 9);
  EXPECT_EQ(t.TokenToId("<pad>"), 0);
  EXPECT_EQ(t.TokenToId("<|endoftext|>"), 1);
  EXPECT_EQ(t.TokenToId("a"), 3);
  EXPECT_TRUE(t.IsSpecialToken(1));
  EXPECT_FALSE(t.IsSpecialToken(3));
  EXPECT_THAT(*t.Encode("ab é\n日<|endoftext|>"), ElementsAre(3, 4, 5, 7, 6, 8, 1));
  EXPECT_THAT(*t.Encode("\n\n"), ElementsAre(6, 6));
  EXPECT_THAT(*t.Encode("axb"), ElementsAre(3, 2, 4));  // unknown -> <unk>
  EXPECT_EQ(*t.Decode({3, 4, 5, 7, 6, 8, 1}), "ab é\n日<|endoftext|>");
  EXPECT_EQ(*t.Decode({}), "");
}

TEST(CharLevelTest, WithoutUnkAnUnknownCharacterIsAnError) {
  auto json_text = MakeCharLevelTokenizerJson({"a"}, {"<pad>"});
  ASSERT_TRUE(json_text.ok());
  auto tok = TokenizerFromJson(*json_text);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT(*(*tok)->Encode("aa"), ElementsAre(1, 1));
  auto bad = (*tok)->Encode("ab");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"b\""));
}

TEST(CharLevelTest, RejectsBadSymbols) {
  EXPECT_FALSE(MakeCharLevelTokenizerJson({"ab"}, {}).ok());
  EXPECT_FALSE(MakeCharLevelTokenizerJson({""}, {}).ok());
  EXPECT_FALSE(MakeCharLevelTokenizerJson({"a", "a"}, {}).ok());
  EXPECT_FALSE(MakeCharLevelTokenizerJson({"a"}, {"a"}).ok());
  EXPECT_FALSE(MakeCharLevelTokenizerJson({"\xFF"}, {}).ok());
  EXPECT_FALSE(MakeCharLevelTokenizerJson({"a"}, {"<pad>"}, "<unk>").ok());
}

}  // namespace
}  // namespace hone
