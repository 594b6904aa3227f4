// The `hone` binary's subcommands. Each subcommand lives in its own <name>_command.cc and
// is one row of the table in commands.cc: adding a command is adding one file and one row.
#pragma once

#include <functional>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace hone::cli {

// What runs when the user picks the subcommand; options are already parsed into the
// variables the setup function bound. A non-OK status is printed and exits non-zero.
using CommandAction = std::function<absl::Status()>;

// Declares the subcommand's options on `sub` and returns its action.
using CommandSetup = CommandAction (*)(CLI::App& sub);

struct CommandSpec {
  const char* name;
  const char* description;
  CommandSetup setup;
};

// All subcommands, in the order `hone --help` lists them.
const std::vector<CommandSpec>& AllCommands();

// Setup functions, one per <name>_command.cc.
CommandAction SetupModelCommand(CLI::App& sub);
CommandAction SetupGenerateCommand(CLI::App& sub);
CommandAction SetupRewardCommand(CLI::App& sub);
CommandAction SetupTokenizeCommand(CLI::App& sub);
CommandAction SetupEvalCommand(CLI::App& sub);
CommandAction SetupSftCommand(CLI::App& sub);
CommandAction SetupTrainCommand(CLI::App& sub);

}  // namespace hone::cli
