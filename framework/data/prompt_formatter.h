// The text a model sees for a task's question: one of the named templates
// (ApplyPromptTemplate: raw, plain, qwen, llama3) or, for `chat`, the model's own chat
// template (tokenizer_config.json's Jinja `chat_template`, as HF's apply_chat_template
// renders it) with the task's instruction as the one user turn and the generation prompt.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace hone::chat {
struct ChatTemplate;
}

namespace hone::data {

inline constexpr std::string_view kChatPromptTemplate = "chat";

// The user turn of the `chat` template: the question and the instruction the `qwen` and
// `llama3` templates give (Qwen2.5-Math's "reason step by step ... \boxed{}").
std::string ChatUserTurn(std::string_view question);

class PromptFormatter {
 public:
  // `name` is data.prompt_template. For `chat`, `model_dir` holds tokenizer_config.json;
  // errors name data.prompt_template and the file. Other names ignore `model_dir`.
  static absl::StatusOr<PromptFormatter> Create(const std::string& name, const std::string& model_dir);

  absl::StatusOr<std::string> Format(std::string_view question) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const chat::ChatTemplate> chat_;  // set for `chat` only
};

}  // namespace hone::data
