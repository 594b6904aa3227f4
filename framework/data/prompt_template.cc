// Prompt templates by name. Each is a text with one `{question}` placeholder.
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/data/dataset.h"

namespace hone::data {
namespace {

constexpr std::string_view kPlaceholder = "{question}";

struct TemplateEntry {
  std::string_view name;
  std::string_view text;
};

// The instruction Qwen2.5-Math was tuned with; the boxed_integer reward looks for exactly
// this `\boxed{}`.
#define HONE_BOX_INSTRUCTION "Please reason step by step, and put your final answer within \\boxed{}."
}  // namespace

const char kBoxInstruction[] = HONE_BOX_INSTRUCTION;

namespace {

// Adding a template is adding a row here.
constexpr TemplateEntry kTemplates[] = {
    {"raw", "{question}"},
    {"plain", "{question}\nPut the final integer answer in \\boxed{}."},
    {"qwen",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
     "<|im_start|>user\n{question} " HONE_BOX_INSTRUCTION "<|im_end|>\n"
     "<|im_start|>assistant\n"},
    {"llama3",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
     "{question} " HONE_BOX_INSTRUCTION "<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n"},
};

#undef HONE_BOX_INSTRUCTION

}  // namespace

absl::StatusOr<std::string> ApplyPromptTemplate(std::string_view name, std::string_view question) {
  for (const TemplateEntry& entry : kTemplates) {
    if (entry.name != name) continue;
    // Split once at the placeholder, so a question that itself contains "{question}" is
    // inserted verbatim.
    size_t at = entry.text.find(kPlaceholder);
    std::string out;
    out.reserve(entry.text.size() + question.size());
    out.append(entry.text.substr(0, at));
    out.append(question);
    out.append(entry.text.substr(at + kPlaceholder.size()));
    return out;
  }
  return absl::NotFoundError(absl::StrCat("unknown prompt template '", std::string(name),
                                          "'; known: ", absl::StrJoin(PromptTemplateNames(), ", ")));
}

std::vector<std::string> PromptTemplateNames() {
  std::vector<std::string> names;
  for (const TemplateEntry& entry : kTemplates) names.emplace_back(entry.name);
  return names;
}

}  // namespace hone::data
