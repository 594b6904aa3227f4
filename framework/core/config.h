// Typed, validated configuration: YAML files plus verl-style `a.b.c=value` overrides.
//
// Every key a job may set is declared once, with its type, default, allowed values and a
// one-line help, in a ConfigSchema (the project's schema is HoneConfigSchema(), the one
// place where defaults live). Loading a file or an override checks each key against the
// schema, so a typo, a wrong type or an out-of-range value fails at start-up with a
// message naming the key, where it came from and what is allowed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace hone {

enum class ConfigType { kInt, kFloat, kBool, kString, kIntList, kFloatList, kStringList };

using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                                 std::vector<double>, std::vector<std::string>>;

struct ConfigField {
  std::string key;            // dotted path, e.g. "trainer.total_steps"
  ConfigType type;
  ConfigValue default_value;  // must hold the alternative matching `type`
  std::string help;
  std::optional<double> min;  // inclusive bounds for numbers (each element of a list)
  std::optional<double> max;
  std::vector<std::string> choices;  // allowed strings (empty = any)
  bool min_exclusive = false;        // min itself is not allowed (e.g. an epsilon > 0)
  // An input file or directory. A relative value from a YAML file is resolved against
  // that file's directory (a config then runs from any working directory); one from the
  // command line against the working directory. Either way the stored value is absolute,
  // so the config printed into a run directory reads back to the same files.
  bool is_path = false;
};

class ConfigSchema {
 public:
  // REQUIRES: key not added before; default matches type. Violations abort: they are
  // programming errors in the schema table, not user errors.
  ConfigSchema& Add(ConfigField field);
  const ConfigField* Find(const std::string& key) const;
  const std::vector<ConfigField>& fields() const { return fields_; }

 private:
  std::vector<ConfigField> fields_;
  std::map<std::string, size_t> index_;
};

class Config {
 public:
  // Defaults from `schema`, then the YAML file at `yaml_path` (skipped when empty), then
  // each "a.b=value" override in order (values parse as YAML: 3, 0.5, true, [1, 2], text).
  // Returns InvalidArgument naming the key and its source for unknown keys, type errors,
  // out-of-range values and values outside `choices`; NotFound for a missing file.
  // Relative values of is_path keys become absolute (see ConfigField::is_path).
  static absl::StatusOr<Config> Load(const ConfigSchema& schema, const std::string& yaml_path,
                                     const std::vector<std::string>& overrides);
  static Config Defaults(const ConfigSchema& schema);

  // Typed getters. REQUIRES: `key` is in the schema with that type (aborts otherwise:
  // asking for an undeclared key is a programming error).
  int64_t Int(const std::string& key) const;
  double Float(const std::string& key) const;
  bool Bool(const std::string& key) const;
  const std::string& String(const std::string& key) const;
  const std::vector<int64_t>& IntList(const std::string& key) const;
  const std::vector<double>& FloatList(const std::string& key) const;
  const std::vector<std::string>& StringList(const std::string& key) const;

  // Sets one key from its textual form, validated as an override would be.
  absl::Status Set(const std::string& key, const std::string& value_text,
                   const std::string& source = "code");

  // The resolved config as nested YAML, in schema order, with each key's help as a
  // comment: what `hone <cmd> --print-config` prints.
  std::string ToYaml(bool with_help = true) const;

  // One key's value as it appears in ToYaml ("0.9", "\"grpo\"", "[1, 2]").
  // REQUIRES: `key` is in the schema.
  std::string ValueText(const std::string& key) const;

  const ConfigSchema& schema() const { return *schema_; }

 private:
  explicit Config(const ConfigSchema* schema);
  const ConfigValue& Get(const std::string& key, ConfigType type) const;
  absl::Status SetFromYamlText(const std::string& key, const std::string& text,
                               const std::string& source);

  const ConfigSchema* schema_;
  std::map<std::string, ConfigValue> values_;
};

// The keys whose values differ between two configs of the same schema, in schema
// order, each as "key: <before> -> <after>".
std::vector<std::string> ConfigChanges(const Config& before, const Config& after);

// A number as the shortest text that reads back to the same double: 0.9, 1e-05, 3.
std::string FormatConfigNumber(double value);

// The schema of every key Hone's commands understand, with defaults.
const ConfigSchema& HoneConfigSchema();

}  // namespace hone
