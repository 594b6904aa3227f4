// `hone`: one binary, one subcommand per job (tokenize, model, generate, train, ...).
#include <c10/util/Exception.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/dist/build_info.h"
#include "workers/cli/command.h"
#include "workers/cli/threads.h"

namespace {

void PrintCommands(std::ostream& out) {
  out << "usage: hone <command> [options]   (hone <command> --help: its options; hone --version)\n\ncommands:\n";
  for (const auto& spec : hone::cli::AllCommands()) out << absl::StrFormat("  %-9s %s\n", spec.name, spec.description);
}

bool IsCommand(const char* name) {
  for (const auto& spec : hone::cli::AllCommands()) {
    if (std::strcmp(spec.name, name) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  hone::cli::EnsureBlasCoreType(argv);
  if (argc == 1) {
    PrintCommands(std::cout);
    return 0;
  }
  if (argv[1][0] != '-' && !IsCommand(argv[1])) {
    std::cerr << "hone: error: unknown command '" << argv[1] << "'\n";
    PrintCommands(std::cerr);
    return 1;
  }
  CLI::App app{"Hone: distributed RL post-training (GRPO) for LLMs on libtorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", hone::VersionText());
  // Every option's --help line shows its default (subcommands inherit option_defaults).
  app.option_defaults()->always_capture_default();
  // One line naming the command and the bad input, as the commands' own errors do.
  // "hone model init": the command line's subcommands, as deep as they were parsed.
  auto command_name = [](const CLI::App* top) {
    std::string name = "hone";
    for (const CLI::App* app = top; !app->get_subcommands().empty();) {
      app = app->get_subcommands().front();
      name += " " + app->get_name();
    }
    return name;
  };
  app.failure_message([command_name](const CLI::App* top, const CLI::Error& e) {
    const std::string name = command_name(top);
    return name + ": error: " + e.what() + " (" + name + " --help lists the options)\n";
  });
  std::map<const CLI::App*, hone::cli::CommandAction> actions;
  for (const auto& spec : hone::cli::AllCommands()) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    actions[sub] = spec.setup(*sub);
  }
  CLI11_PARSE(app, argc, argv);
  for (const auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    absl::Status status;
    // Libraries below report errors as Status; an exception escaping to here is a bug,
    // but it still ends in one line, not in "terminate called" and a C++ stack trace.
    try {
      status = action();
    } catch (const c10::Error& e) {
      status = absl::InternalError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      status = absl::InternalError(e.what());
    }
    if (!status.ok()) {
      std::cerr << command_name(&app) << ": error: " << status.message() << "\n";
      return 1;
    }
    return 0;
  }
  return 1;
}
