#include "framework/core/config_reference.h"

#include <map>
#include <vector>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace hone {
namespace {

const char* TypeName(ConfigType type) {
  switch (type) {
    case ConfigType::kInt: return "int";
    case ConfigType::kFloat: return "float";
    case ConfigType::kBool: return "bool";
    case ConfigType::kString: return "string";
    case ConfigType::kIntList: return "list of int";
    case ConfigType::kFloatList: return "list of float";
    case ConfigType::kStringList: return "list of string";
  }
  return "?";
}

// Markdown table cells: a literal | would end the cell.
std::string Cell(const std::string& text) { return absl::StrReplaceAll(text, {{"|", "\\|"}}); }

std::string DefaultText(const ConfigField& f) {
  struct Visitor {
    std::string operator()(int64_t v) const { return absl::StrCat(v); }
    std::string operator()(double v) const { return FormatConfigNumber(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v.empty() ? "\"\"" : v; }
    std::string operator()(const std::vector<int64_t>& v) const { return absl::StrCat("[", absl::StrJoin(v, ", "), "]"); }
    std::string operator()(const std::vector<double>& v) const {
      std::vector<std::string> parts;
      for (double x : v) parts.push_back(FormatConfigNumber(x));
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
    std::string operator()(const std::vector<std::string>& v) const {
      return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
    }
  };
  return std::visit(Visitor{}, f.default_value);
}

std::string Allowed(const ConfigField& f) {
  if (!f.choices.empty()) return absl::StrJoin(f.choices, ", ");
  std::string lo, hi;
  if (f.min) lo = absl::StrCat(f.min_exclusive ? "> " : ">= ", FormatConfigNumber(*f.min));
  if (f.max) hi = absl::StrCat("<= ", FormatConfigNumber(*f.max));
  if (!lo.empty() && !hi.empty()) return absl::StrCat(lo, " and ", hi);
  return lo + hi;
}

}  // namespace

std::string ConfigReferenceMarkdown(const ConfigSchema& schema) {
  std::ostringstream out;
  out << "# Configuration reference\n\n"
         "Generated from the schema (`framework/core/config_schema.cc`) by `ConfigReferenceMarkdown`;\n"
         "`tests/core/config_reference_test.cc` fails when this page and the schema differ (it\n"
         "writes the expected page into the build directory: copy it here). How files, overrides\n"
         "and paths work: [configuration.md](configuration.md).\n";
  // Sections in the order their first key appears in the schema.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const ConfigField*>> groups;
  for (const ConfigField& f : schema.fields()) {
    const size_t dot = f.key.find('.');
    const std::string group = dot == std::string::npos ? "top level" : f.key.substr(0, dot);
    if (!groups.count(group)) order.push_back(group);
    groups[group].push_back(&f);
  }
  for (const std::string& group : order) {
    out << "\n## " << group << "\n\n| Key | Type | Default | Allowed | Meaning |\n|---|---|---|---|---|\n";
    for (const ConfigField* f : groups[group]) {
      out << "| `" << f->key << "` | " << TypeName(f->type) << (f->is_path ? " (path)" : "") << " | `"
          << Cell(DefaultText(*f)) << "` | " << Cell(Allowed(*f)) << " | " << Cell(f->help) << " |\n";
    }
  }
  return out.str();
}

}  // namespace hone
