#include "workers/cli/command.h"

namespace hone::cli {

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> commands = {
      {"reward", "Score responses (JSONL on stdin) with a reward function", SetupRewardCommand},
  };
  return commands;
}

}  // namespace hone::cli
