#include "workers/cli/command.h"

namespace hone::cli {

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> commands = {
      {"model", "Create (init) or inspect (info) a model directory in HF layout", SetupModelCommand},
      {"generate", "Sample responses to a prompt from a model directory", SetupGenerateCommand},
      {"reward", "Score responses (JSONL on stdin) with a reward function", SetupRewardCommand},
      {"tokenize", "Encode text to token ids, or decode ids back to text (--decode)", SetupTokenizeCommand},
      {"sft", "Supervised fine-tuning on reference solutions (the warm start for GRPO)", SetupSftCommand},
      {"train", "GRPO training: generate, reward, advantages, policy update, weight sync", SetupTrainCommand},
      {"eval", "Compare models on the same held-out prompts (accuracy, pass@k, format, lengths)", SetupEvalCommand},
  };
  return commands;
}

}  // namespace hone::cli
