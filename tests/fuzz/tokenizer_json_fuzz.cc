// Fuzz target: loading a tokenizer.json (framework/model/tokenizer.h, TokenizerFromJson),
// then using what loaded: encoding a few texts and decoding ids around the vocabulary.
// Nothing may crash, hang or throw; errors are Status values.
#include <cstdint>
#include <string>
#include <vector>

#include "framework/model/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<std::unique_ptr<hone::Tokenizer>> tok =
      hone::TokenizerFromJson(hone::fuzz::AsView(data, size));
  if (!tok.ok()) {
    HONE_FUZZ_CHECK(!tok.status().message().empty(), "an error says why");
    return 0;
  }
  const hone::Tokenizer& t = **tok;
  const int64_t vocab = t.VocabSize();
  HONE_FUZZ_CHECK(vocab >= 0, "VocabSize");
  for (const char* text : {"", "a", "Hello world 12345", "  \n\t x<|endoftext|>y", "caf\xc3\xa9 \xe2\x82\xac"}) {
    absl::StatusOr<std::vector<int64_t>> ids = t.Encode(text);
    if (!ids.ok()) continue;
    for (int64_t id : *ids) HONE_FUZZ_CHECK(id >= 0 && id < vocab, "Encode gave an id outside the vocabulary");
    HONE_FUZZ_CHECK(t.Decode(*ids).ok(), "Decode of Encode's ids");
  }
  std::vector<int64_t> probe = {-1, 0, 1, vocab - 1, vocab, INT64_MAX, INT64_MIN};
  HONE_FUZZ_CHECK(t.Decode(probe).ok(), "Decode never fails on unknown ids");
  for (int64_t id : probe) {
    std::optional<std::string> spelling = t.IdToToken(id);
    (void)t.IsSpecialToken(id);
    if (spelling) {
      HONE_FUZZ_CHECK(id >= 0 && id < vocab, "IdToToken outside the vocabulary");
      (void)t.TokenToId(*spelling);
    }
  }
  return 0;
}
