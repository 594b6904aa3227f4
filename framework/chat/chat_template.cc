#include "framework/chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"

namespace hone::chat {

absl::StatusOr<ChatTemplate> ParseTokenizerConfig(const std::string& json_text, const std::string& path) {
  bool ok = false;
  jinja::Value config = jinja::Value::FromJson(json_text, &ok);
  if (!ok || !config.is_dict()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  ChatTemplate out;
  out.path = path;
  const jinja::Value* tmpl = config.dict().Find("chat_template");
  if (tmpl != nullptr && tmpl->is_list()) {
    const jinja::Value* chosen = nullptr;
    for (const jinja::Value& entry : tmpl->list()) {
      if (!entry.is_dict()) continue;
      const jinja::Value* name = entry.dict().Find("name");
      if (name != nullptr && name->is_string() && name->str() == "default") chosen = entry.dict().Find("template");
    }
    tmpl = chosen;
  }
  if (tmpl == nullptr || !tmpl->is_string()) {
    return absl::NotFoundError(absl::StrCat(path, " has no chat_template (a string, or a list with a \"default\" entry)"));
  }
  out.source = tmpl->str();
  for (const char* key : {"bos_token", "eos_token"}) {
    const jinja::Value* token = config.dict().Find(key);
    if (token != nullptr && token->is_dict()) token = token->dict().Find("content");
    if (token == nullptr || !token->is_string()) continue;
    (std::string(key) == "bos_token" ? out.bos_token : out.eos_token) = token->str();
  }
  jinja::TemplateOptions options;
  options.trim_blocks = true;
  options.lstrip_blocks = true;
  absl::StatusOr<jinja::Template> compiled = jinja::Template::Parse(out.source, options);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": chat_template: ", compiled.status().message()));
  }
  out.compiled = *std::move(compiled);
  return out;
}

absl::StatusOr<ChatTemplate> LoadChatTemplate(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "tokenizer_config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseTokenizerConfig(text.str(), path);
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat, const jinja::Value& messages,
                                       bool add_generation_prompt, const jinja::Dict& extra) {
  jinja::Dict vars;
  vars.Set("messages", messages);
  vars.Set("tools", jinja::Value::None());
  vars.Set("documents", jinja::Value::None());
  vars.Set("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  if (chat.bos_token) vars.Set("bos_token", jinja::Value::String(*chat.bos_token));
  if (chat.eos_token) vars.Set("eos_token", jinja::Value::String(*chat.eos_token));
  for (const auto& [k, v] : extra.entries) vars.Set(k, v);
  absl::StatusOr<std::string> out = chat.compiled.Render(vars);
  if (!out.ok()) return absl::InvalidArgumentError(absl::StrCat(chat.path, ": chat_template: ", out.status().message()));
  return out;
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& chat, const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt) {
  jinja::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.Set("role", jinja::Value::String(m.role));
    d.Set("content", jinja::Value::String(m.content));
    list.push_back(jinja::Value::MakeDict(std::move(d)));
  }
  return RenderChat(chat, jinja::Value::MakeList(std::move(list)), add_generation_prompt);
}

}  // namespace hone::chat
