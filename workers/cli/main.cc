// `hone`: one binary, one subcommand per job (tokenize, model, generate, train, ...).
#include <iostream>
#include <map>
#include <string>

#include "framework/dist/build_info.h"
#include "workers/cli/command.h"
#include "workers/cli/threads.h"

int main(int argc, char** argv) {
  hone::cli::EnsureBlasCoreType(argv);
  CLI::App app{"Hone: distributed RL post-training (GRPO) for LLMs on libtorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hone 0.1.0\n") + hone::BuildInfo());
  std::map<const CLI::App*, hone::cli::CommandAction> actions;
  for (const auto& spec : hone::cli::AllCommands()) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    actions[sub] = spec.setup(*sub);
  }
  CLI11_PARSE(app, argc, argv);
  for (const auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    absl::Status status = action();
    if (!status.ok()) {
      std::cerr << "hone " << sub->get_name() << ": error: " << status.message() << "\n";
      return 1;
    }
    return 0;
  }
  return 1;
}
