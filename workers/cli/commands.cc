#include "workers/cli/command.h"

namespace hone::cli {

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> commands = {
  };
  return commands;
}

}  // namespace hone::cli
