#include "framework/core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"

namespace hone {
namespace {

const char* TypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kInt: return "an integer";
    case ConfigType::kFloat: return "a number";
    case ConfigType::kBool: return "a boolean (true/false)";
    case ConfigType::kString: return "a string";
    case ConfigType::kIntList: return "a list of integers";
    case ConfigType::kFloatList: return "a list of numbers";
    case ConfigType::kStringList: return "a list of strings";
  }
  return "?";
}

size_t TypeIndex(ConfigType type) { return static_cast<size_t>(type); }

[[noreturn]] void SchemaBug(const std::string& message) {
  std::fprintf(stderr, "hone: config schema bug: %s\n", message.c_str());
  std::abort();
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Suggestion(const ConfigSchema& schema, const std::string& key) {
  const ConfigField* best = nullptr;
  size_t best_distance = key.size() / 3 + 3;
  for (const auto& field : schema.fields()) {
    size_t d = EditDistance(key, field.key);
    if (d < best_distance) best_distance = d, best = &field;
  }
  return best ? absl::StrCat(" (did you mean '", best->key, "'?)") : "";
}

absl::StatusOr<int64_t> ScalarToInt(const YAML::Node& node) {
  const std::string text = node.Scalar();
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    // Accept 1e3-style integers written as floats only when they are whole.
    double d = std::strtod(text.c_str(), &end);
    if (!text.empty() && *end == '\0' && std::isfinite(d) && d == std::floor(d) &&
        std::fabs(d) < 9e18) {
      return static_cast<int64_t>(d);
    }
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an integer"));
  }
  return static_cast<int64_t>(value);
}

absl::StatusOr<double> ScalarToFloat(const YAML::Node& node) {
  const std::string text = node.Scalar();
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a number"));
  }
  return value;
}

absl::StatusOr<bool> ScalarToBool(const YAML::Node& node) {
  const std::string text = node.Scalar();
  if (text == "true" || text == "True" || text == "1") return true;
  if (text == "false" || text == "False" || text == "0") return false;
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not true or false"));
}

// Converts a YAML node into the field's type, or says why not.
absl::StatusOr<ConfigValue> Convert(const ConfigField& field, const YAML::Node& node) {
  const bool is_list = field.type == ConfigType::kIntList ||
                       field.type == ConfigType::kFloatList ||
                       field.type == ConfigType::kStringList;
  if (is_list) {
    if (!node.IsSequence()) {
      return absl::InvalidArgumentError(absl::StrCat("expected ", TypeName(field.type),
                                                     " like [1, 2]"));
    }
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<std::string> strings;
    for (const auto& item : node) {
      if (!item.IsScalar()) return absl::InvalidArgumentError("nested lists are not allowed");
      if (field.type == ConfigType::kIntList) {
        HONE_ASSIGN_OR_RETURN(int64_t v, ScalarToInt(item));
        ints.push_back(v);
      } else if (field.type == ConfigType::kFloatList) {
        HONE_ASSIGN_OR_RETURN(double v, ScalarToFloat(item));
        floats.push_back(v);
      } else {
        strings.push_back(item.Scalar());
      }
    }
    if (field.type == ConfigType::kIntList) return ConfigValue(ints);
    if (field.type == ConfigType::kFloatList) return ConfigValue(floats);
    return ConfigValue(strings);
  }
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", TypeName(field.type)));
  }
  switch (field.type) {
    case ConfigType::kInt: {
      HONE_ASSIGN_OR_RETURN(int64_t v, ScalarToInt(node));
      return ConfigValue(v);
    }
    case ConfigType::kFloat: {
      HONE_ASSIGN_OR_RETURN(double v, ScalarToFloat(node));
      return ConfigValue(v);
    }
    case ConfigType::kBool: {
      HONE_ASSIGN_OR_RETURN(bool v, ScalarToBool(node));
      return ConfigValue(v);
    }
    default:
      return ConfigValue(node.IsNull() ? std::string() : node.Scalar());
  }
}

std::string FormatNumber(double v) { return FormatConfigNumber(v); }

// A relative path value of an is_path key made absolute against `base`.
void ResolvePath(const ConfigField& field, const std::filesystem::path& base, ConfigValue& value) {
  auto* text = std::get_if<std::string>(&value);
  if (!field.is_path || text == nullptr || text->empty()) return;
  std::filesystem::path path(*text);
  if (path.is_relative()) path = base / path;
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  *text = (ec ? path : absolute).lexically_normal().string();
}

absl::Status CheckRange(const ConfigField& field, const ConfigValue& value) {
  std::vector<double> numbers;
  if (auto* i = std::get_if<int64_t>(&value)) numbers.push_back(static_cast<double>(*i));
  if (auto* d = std::get_if<double>(&value)) numbers.push_back(*d);
  if (auto* il = std::get_if<std::vector<int64_t>>(&value)) {
    for (int64_t x : *il) numbers.push_back(static_cast<double>(x));
  }
  if (auto* dl = std::get_if<std::vector<double>>(&value)) numbers = *dl;
  for (double x : numbers) {
    const bool below = field.min && (x < *field.min || (field.min_exclusive && x == *field.min));
    if (below || (field.max && x > *field.max) || std::isnan(x)) {
      std::string range = absl::StrCat(field.min ? FormatNumber(*field.min) : "-inf",
                                       field.min_exclusive ? " (exclusive)" : "", " .. ",
                                       field.max ? FormatNumber(*field.max) : "inf");
      return absl::InvalidArgumentError(
          absl::StrCat("value ", FormatNumber(x), " is out of range; allowed: ", range));
    }
  }
  std::vector<std::string> strings;
  if (auto* s = std::get_if<std::string>(&value)) strings.push_back(*s);
  if (auto* sl = std::get_if<std::vector<std::string>>(&value)) strings = *sl;
  if (!field.choices.empty()) {
    for (const auto& s : strings) {
      if (std::find(field.choices.begin(), field.choices.end(), s) == field.choices.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", s, "' is not allowed; allowed values: ", absl::StrJoin(field.choices, ", ")));
      }
    }
  }
  return absl::OkStatus();
}

// Most nodes Flatten visits in one file. Aliases make a YAML document a graph: a few
// hundred bytes of nested `*ref`s expand to billions of nodes (the "billion laughs"), and a
// walk without a bound hangs. Hone's whole schema is a few hundred keys.
constexpr size_t kMaxConfigNodes = 100000;

// No schema key is nested deeper than a few levels; an alias that refers to its own
// anchor (`a: &a {b: *a}`, after the anchor was redefined) makes a cycle, so depth needs a
// bound of its own: the node budget alone lets the dotted key grow to megabytes.
constexpr int kMaxConfigDepth = 32;

enum class FlattenResult { kOk, kTooManyNodes, kTooDeep };

// Collects the leaves of `node` under dotted keys, visiting at most `budget` nodes and
// kMaxConfigDepth levels; on failure `out` is partial.
FlattenResult Flatten(const YAML::Node& node, const std::string& prefix,
                      std::vector<std::pair<std::string, YAML::Node>>& out, size_t& budget, int depth = 0) {
  if (budget == 0) return FlattenResult::kTooManyNodes;
  if (depth > kMaxConfigDepth) return FlattenResult::kTooDeep;
  --budget;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      const FlattenResult result =
          Flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out, budget, depth + 1);
      if (result != FlattenResult::kOk) return result;
    }
    return FlattenResult::kOk;
  }
  out.emplace_back(prefix, node);
  return FlattenResult::kOk;
}

void EmitValue(YAML::Emitter& out, const ConfigValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::vector<int64_t>> ||
                      std::is_same_v<T, std::vector<double>> ||
                      std::is_same_v<T, std::vector<std::string>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const auto& x : v) {
            // yaml-cpp prints doubles with 17 digits (0.90000000000000002).
            if constexpr (std::is_same_v<T, std::vector<double>>) {
              out << FormatNumber(x);
            } else {
              out << x;
            }
          }
          out << YAML::EndSeq;
        } else if constexpr (std::is_same_v<T, std::string>) {
          out << YAML::DoubleQuoted << v;
        } else if constexpr (std::is_same_v<T, double>) {
          // Keep a decimal point so the printed config re-reads as a float.
          std::string text = FormatNumber(v);
          if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
          out << text;
        } else {
          out << v;
        }
      },
      value);
}

}  // namespace

std::string FormatConfigNumber(double value) {
  if (!std::isfinite(value)) {
    return std::isnan(value) ? ".nan" : value > 0 ? "inf" : "-inf";
  }
  // The fewest significant digits that read back exactly: what a person wrote (0.9, 3e-4)
  // rather than the nearest 17-digit expansion.
  char text[64];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

ConfigSchema& ConfigSchema::Add(ConfigField field) {
  if (index_.count(field.key)) SchemaBug("duplicate key " + field.key);
  if (field.default_value.index() != TypeIndex(field.type)) {
    SchemaBug("default of " + field.key + " does not match its type");
  }
  index_[field.key] = fields_.size();
  fields_.push_back(std::move(field));
  return *this;
}

const ConfigField* ConfigSchema::Find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &fields_[it->second];
}

Config::Config(const ConfigSchema* schema) : schema_(schema) {
  for (const auto& field : schema->fields()) values_[field.key] = field.default_value;
}

Config Config::Defaults(const ConfigSchema& schema) { return Config(&schema); }

absl::Status Config::SetFromYamlText(const std::string& key, const std::string& text,
                                     const std::string& source) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // Unparseable as YAML (e.g. "a: b" fragments): treat the text as a plain string.
    node = YAML::Node(text);
  }
  const ConfigField* field = schema_->Find(key);
  if (field == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown config key '", key, "' in ",
                                                   source, Suggestion(*schema_, key)));
  }
  if (field->type == ConfigType::kString && !node.IsScalar() && !node.IsNull()) {
    node = YAML::Node(text);
  }
  absl::StatusOr<ConfigValue> value = Convert(*field, node);
  if (value.ok()) {
    absl::Status range = CheckRange(*field, *value);
    if (!range.ok()) value = range;
  }
  if (!value.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config key '", key, "' in ", source, ": ",
                                                   value.status().message(), " (expected ",
                                                   TypeName(field->type), ": ", field->help,
                                                   ")"));
  }
  values_[key] = *std::move(value);
  return absl::OkStatus();
}

absl::Status Config::Set(const std::string& key, const std::string& value_text,
                         const std::string& source) {
  return SetFromYamlText(key, value_text, source);
}

absl::StatusOr<Config> Config::Load(const ConfigSchema& schema, const std::string& yaml_path,
                                    const std::vector<std::string>& overrides) {
  Config config(&schema);
  if (!yaml_path.empty()) {
    std::ifstream in(yaml_path);
    if (!in) return absl::NotFoundError(absl::StrCat("config file '", yaml_path, "' not found"));
    YAML::Node root;
    try {
      root = YAML::LoadFile(yaml_path);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("config file '", yaml_path, "' is not valid YAML: ", e.what()));
    }
    if (!root.IsNull() && !root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config file '", yaml_path, "' must be a mapping of keys to values"));
    }
    std::vector<std::pair<std::string, YAML::Node>> leaves;
    size_t budget = kMaxConfigNodes;
    // An empty file (or one of comments only) sets nothing.
    switch (root.IsNull() ? FlattenResult::kOk : Flatten(root, "", leaves, budget)) {
      case FlattenResult::kOk: break;
      case FlattenResult::kTooManyNodes:
        return absl::InvalidArgumentError(absl::StrCat("config file '", yaml_path, "' has more than ",
                                                       kMaxConfigNodes,
                                                       " entries (aliases expanding without bound?)"));
      case FlattenResult::kTooDeep:
        return absl::InvalidArgumentError(absl::StrCat("config file '", yaml_path, "' nests mappings more than ",
                                                       kMaxConfigDepth,
                                                       " levels deep (an alias that refers to itself?)"));
    }
    for (auto& [key, node] : leaves) {
      const std::string source = absl::StrCat("config file '", yaml_path, "'");
      const ConfigField* field = schema.Find(key);
      if (field == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown config key '", key, "' in ",
                                                       source, Suggestion(schema, key)));
      }
      if (node.IsNull() && field->type != ConfigType::kString) {
        return absl::InvalidArgumentError(
            absl::StrCat("config key '", key, "' in ", source, " has no value"));
      }
      absl::StatusOr<ConfigValue> value = Convert(*field, node);
      if (value.ok()) {
        absl::Status range = CheckRange(*field, *value);
        if (!range.ok()) value = range;
      }
      if (!value.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("config key '", key, "' in ", source,
                                                       ": ", value.status().message(),
                                                       " (expected ", TypeName(field->type),
                                                       ": ", field->help, ")"));
      }
      ResolvePath(*field, std::filesystem::path(yaml_path).parent_path(), *value);
      config.values_[key] = *std::move(value);
    }
  }
  for (const std::string& override_text : overrides) {
    size_t eq = override_text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override '", override_text, "' on the command line is not of the form key=value"));
    }
    const std::string key = override_text.substr(0, eq);
    HONE_RETURN_IF_ERROR(config.SetFromYamlText(key, override_text.substr(eq + 1), "the command line"));
    ResolvePath(*schema.Find(key), std::filesystem::path(), config.values_[key]);
  }
  return config;
}

const ConfigValue& Config::Get(const std::string& key, ConfigType type) const {
  const ConfigField* field = schema_->Find(key);
  if (field == nullptr) SchemaBug("asked for undeclared key " + key);
  if (field->type != type) SchemaBug("asked for " + key + " as the wrong type");
  return values_.at(key);
}

int64_t Config::Int(const std::string& key) const {
  return std::get<int64_t>(Get(key, ConfigType::kInt));
}
double Config::Float(const std::string& key) const {
  return std::get<double>(Get(key, ConfigType::kFloat));
}
bool Config::Bool(const std::string& key) const {
  return std::get<bool>(Get(key, ConfigType::kBool));
}
const std::string& Config::String(const std::string& key) const {
  return std::get<std::string>(Get(key, ConfigType::kString));
}
const std::vector<int64_t>& Config::IntList(const std::string& key) const {
  return std::get<std::vector<int64_t>>(Get(key, ConfigType::kIntList));
}
const std::vector<double>& Config::FloatList(const std::string& key) const {
  return std::get<std::vector<double>>(Get(key, ConfigType::kFloatList));
}
const std::vector<std::string>& Config::StringList(const std::string& key) const {
  return std::get<std::vector<std::string>>(Get(key, ConfigType::kStringList));
}

std::string Config::ToYaml(bool with_help) const {
  // Keys are dotted paths; emit them as nested maps, opening and closing sections as the
  // path prefix changes (schema order keeps a section's keys together).
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<std::string> open;
  for (const auto& field : schema_->fields()) {
    std::vector<std::string> parts;
    std::stringstream stream(field.key);
    for (std::string part; std::getline(stream, part, '.');) parts.push_back(part);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    while (open.size() > common) {
      out << YAML::EndMap;
      open.pop_back();
    }
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
      open.push_back(parts[i]);
    }
    out << YAML::Key << parts.back() << YAML::Value;
    EmitValue(out, values_.at(field.key));
    if (with_help && !field.help.empty()) out << YAML::Comment(field.help);
  }
  while (!open.empty()) {
    out << YAML::EndMap;
    open.pop_back();
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string Config::ValueText(const std::string& key) const {
  YAML::Emitter out;
  EmitValue(out, values_.at(key));
  return out.c_str();
}

std::vector<std::string> ConfigChanges(const Config& before, const Config& after) {
  std::vector<std::string> changes;
  for (const ConfigField& field : after.schema().fields()) {
    if (before.schema().Find(field.key) == nullptr) continue;
    const std::string was = before.ValueText(field.key);
    const std::string now = after.ValueText(field.key);
    if (was != now) changes.push_back(absl::StrCat(field.key, ": ", was, " -> ", now));
  }
  return changes;
}

}  // namespace hone
