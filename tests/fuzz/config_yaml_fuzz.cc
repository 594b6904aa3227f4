// Fuzz target: the YAML config file and `a.b=c` overrides (framework/core/config.h,
// Config::Load with HoneConfigSchema()).
//
// Input: YAML file text, optionally followed by a line "@@" and override lines
// ("key=value", one per line). The YAML text is written to a scratch file that Load
// reads. A config that loads must print (ToYaml) to YAML that loads to the same config.
#include <string>
#include <vector>

#include "framework/core/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = hone::fuzz::AsView(data, size);
  std::string_view yaml = input;
  std::vector<std::string> overrides;
  if (size_t sep = input.find("\n@@\n"); sep != std::string_view::npos) {
    yaml = input.substr(0, sep);
    std::string_view rest = input.substr(sep + 4);
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  const std::string path = hone::fuzz::ScratchDir() + "/config.yaml";
  hone::fuzz::WriteFileOrDie(path, yaml);

  const hone::ConfigSchema& schema = hone::HoneConfigSchema();
  absl::StatusOr<hone::Config> config = hone::Config::Load(schema, path, overrides);
  // Overrides alone (no file) go through the same code as the command line.
  absl::StatusOr<hone::Config> from_overrides = hone::Config::Load(schema, "", overrides);
  (void)from_overrides;
  if (!config.ok()) {
    HONE_FUZZ_CHECK(!config.status().message().empty(), "an error says why");
    return 0;
  }
  // Round trip: what --print-config writes reads back to the same values.
  const std::string printed = config->ToYaml();
  const std::string printed_path = hone::fuzz::ScratchDir() + "/printed.yaml";
  hone::fuzz::WriteFileOrDie(printed_path, printed);
  absl::StatusOr<hone::Config> reread = hone::Config::Load(schema, printed_path, {});
  HONE_FUZZ_CHECK(reread.ok(), reread.status().ToString() + "\n" + printed);
  HONE_FUZZ_CHECK(reread->ToYaml() == printed, printed + "\n-- reread as --\n" + reread->ToYaml());
  return 0;
}
