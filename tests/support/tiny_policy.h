// A tiny char-level policy for role and trainer tests: a 2-layer model over the symbols of
// arithmetic answers, deterministic for a given seed.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/model/pretrained.h"

namespace hone::testing_support {

inline Pretrained TinyPolicy(uint64_t seed) {
  std::vector<std::string> symbols;
  for (char c : std::string(" +-.0123456789=?\\bdeox{}")) symbols.push_back(std::string(1, c));
  auto json = MakeCharLevelTokenizerJson(symbols, {"<|endoftext|>"});
  EXPECT_TRUE(json.ok());
  Pretrained p;
  p.tokenizer_json = *json;
  p.tokenizer = *TokenizerFromJson(*json);
  ModelConfig c;
  c.vocab_size = p.tokenizer->VocabSize();
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.eos_token_ids = {0};
  p.model = InitModel(c, seed);
  p.stop_token_ids = {0};
  return p;
}

}  // namespace hone::testing_support
