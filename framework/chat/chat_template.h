// Chat templates from a model directory: the Jinja `chat_template` of tokenizer_config.json
// rendered the way transformers' apply_chat_template does (jinja2 with trim_blocks and
// lstrip_blocks, messages / add_generation_prompt / bos_token / eos_token as variables).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/chat/jinja.h"

namespace hone::chat {

struct ChatTemplate {
  std::string path;    // the tokenizer_config.json it came from
  std::string source;  // the template text
  std::optional<std::string> bos_token, eos_token;
  jinja::Template compiled;
};

struct ChatMessage {
  std::string role;  // system, user, assistant
  std::string content;
};

// Parses tokenizer_config.json text. `chat_template` is a string, or a list of
// {"name", "template"} of which "default" is used. `path` names the file in errors.
absl::StatusOr<ChatTemplate> ParseTokenizerConfig(const std::string& json_text, const std::string& path);
// Reads <model_dir>/tokenizer_config.json. NotFound when the file is missing; an error
// naming the file when it has no chat_template or the template does not parse.
absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir);

// Renders `messages` (a jinja list of {"role", "content", ...} dicts). `extra` adds or
// overrides variables (tools, enable_thinking, date_string, strftime_now, ...).
absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat, const jinja::Value& messages,
                                       bool add_generation_prompt, const jinja::Dict& extra = {});
absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat, const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt);

}  // namespace hone::chat
