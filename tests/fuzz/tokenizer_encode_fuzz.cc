// Fuzz target: encoding and decoding arbitrary bytes with fixed tokenizers
// (framework/model/tokenizer.h): a byte-level BPE laid out like Qwen's
// (data/mini_bpe_tokenizer.json) and the char-level WordLevel tokenizer of the demo model
// (MakeCharLevelTokenizerJson over the arithmetic charset).
//
// Input: byte 0 picks the mode; the rest is text (modes 0-1) or little-endian int64 ids
// (modes 2-3). Checks: valid UTF-8 encodes, and byte-level BPE decodes back to the NFC
// form of the text; invalid UTF-8 is an error, not a crash; every id decodes.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "framework/model/tokenizer.h"
#include "framework/model/unicode_nfc.h"
#include "tests/fuzz/fuzz_util.h"

#ifndef HONE_FUZZ_DATA_DIR
#error "HONE_FUZZ_DATA_DIR must name tests/fuzz/data"
#endif

namespace {

std::unique_ptr<hone::Tokenizer> Load(const std::string& json) {
  absl::StatusOr<std::unique_ptr<hone::Tokenizer>> tok = hone::TokenizerFromJson(json);
  HONE_FUZZ_CHECK(tok.ok(), tok.status().ToString());
  return *std::move(tok);
}

const hone::Tokenizer& ByteLevel() {
  static const std::unique_ptr<hone::Tokenizer> tok = [] {
    std::ifstream in(std::string(HONE_FUZZ_DATA_DIR) + "/mini_bpe_tokenizer.json", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    HONE_FUZZ_CHECK(in.good() || in.eof(), "cannot read mini_bpe_tokenizer.json");
    return Load(text.str());
  }();
  return *tok;
}

const hone::Tokenizer& CharLevel() {
  static const std::unique_ptr<hone::Tokenizer> tok = [] {
    std::vector<std::string> symbols;
    for (char c : std::string(" +-.0123456789=?\\bdeox{}")) symbols.emplace_back(1, c);
    symbols.push_back("\xc3\xa9");  // one multi-byte character
    absl::StatusOr<std::string> json =
        hone::MakeCharLevelTokenizerJson(symbols, {"<pad>", "<|endoftext|>", "<unk>"}, "<unk>");
    HONE_FUZZ_CHECK(json.ok(), json.status().ToString());
    return Load(*json);
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 4;
  const std::string_view rest = hone::fuzz::AsView(data + 1, size - 1);
  const hone::Tokenizer& tok = (mode % 2 == 0) ? ByteLevel() : CharLevel();
  if (mode < 2) {
    absl::StatusOr<std::vector<int64_t>> ids = tok.Encode(rest);
    const bool valid = hone::internal::IsValidUtf8(rest);
    HONE_FUZZ_CHECK(ids.ok() == valid, ids.ok() ? "invalid UTF-8 encoded" : ids.status().ToString());
    if (!ids.ok()) return 0;
    for (int64_t id : *ids) HONE_FUZZ_CHECK(id >= 0 && id < tok.VocabSize(), "id outside the vocabulary");
    absl::StatusOr<std::string> text = tok.Decode(*ids);
    HONE_FUZZ_CHECK(text.ok(), text.status().ToString());
    if (mode == 0) {
      // Byte-level BPE loses nothing but what NFC normalisation changes.
      HONE_FUZZ_CHECK(*text == hone::internal::NfcNormalize(rest), "Decode(Encode(text)) != NFC(text)");
    }
    return 0;
  }
  std::vector<int64_t> ids(rest.size() / 8);
  if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 8);
  // Small ids are the interesting ones; fold most of them into the vocabulary's range.
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i % 2 == 0) ids[i] = static_cast<int64_t>(static_cast<uint64_t>(ids[i]) % 512);
  }
  absl::StatusOr<std::string> text = tok.Decode(ids);
  HONE_FUZZ_CHECK(text.ok(), text.status().ToString());
  for (int64_t id : ids) {
    (void)tok.IdToToken(id);
    (void)tok.IsSpecialToken(id);
  }
  return 0;
}
