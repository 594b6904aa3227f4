#include "framework/data/prompt_formatter.h"

#include "absl/strings/str_cat.h"
#include "framework/chat/chat_template.h"
#include "framework/data/dataset.h"

namespace hone::data {

std::string ChatUserTurn(std::string_view question) {
  return absl::StrCat(std::string(question), " ", kBoxInstruction);
}

absl::StatusOr<PromptFormatter> PromptFormatter::Create(const std::string& name, const std::string& model_dir) {
  PromptFormatter formatter;
  formatter.name_ = name;
  if (name != kChatPromptTemplate) {
    // Fails on an unknown name, listing the known ones.
    absl::StatusOr<std::string> probe = ApplyPromptTemplate(name, "1+1=?");
    if (!probe.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("data.prompt_template: ", probe.status().message(), ", chat"));
    }
    return formatter;
  }
  if (model_dir.empty()) {
    return absl::InvalidArgumentError(
        "data.prompt_template=chat renders the model's own chat template, but there is no model directory to read "
        "tokenizer_config.json from (a model made from model.init_config has none): use a named template (raw, "
        "plain, qwen, llama3)");
  }
  absl::StatusOr<chat::ChatTemplate> loaded = chat::LoadChatTemplate(model_dir);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("data.prompt_template=chat: ", loaded.status().message(),
                                     " (a model's chat template comes from its tokenizer_config.json; or use a named "
                                     "template: raw, plain, qwen, llama3)"));
  }
  formatter.chat_ = std::make_shared<const chat::ChatTemplate>(*std::move(loaded));
  // Render once now, so a template that fails on a plain user turn fails at start-up.
  absl::StatusOr<std::string> probe = formatter.Format("1+1=?");
  if (!probe.ok()) return probe.status();
  return formatter;
}

absl::StatusOr<std::string> PromptFormatter::Format(std::string_view question) const {
  if (chat_ == nullptr) return ApplyPromptTemplate(name_, question);
  absl::StatusOr<std::string> text =
      chat::RenderChat(*chat_, {{"user", ChatUserTurn(question)}}, /*add_generation_prompt=*/true);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("data.prompt_template=chat (", chat_->path,
                                                           "): ", text.status().message()));
  }
  return text;
}

}  // namespace hone::data
