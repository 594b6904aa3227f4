// `hone sft`: supervised fine-tuning on reference solutions — the warm start for GRPO.
#pragma once

#include "absl/status/status.h"
#include "framework/core/config.h"

namespace hone {

// Trains model.path (or a fresh model from model.init_config with a char-level tokenizer
// built from the dataset's characters) on prompt -> solution pairs; the loss covers the
// solution and the end-of-text token. Writes <trainer.output_dir>/final in HF layout and
// metrics.jsonl.
absl::Status RunSft(const Config& config);

}  // namespace hone
