// Chat templates (framework/chat/chat_template.h) against goldens that Python's jinja2
// rendered the way transformers does (tools/make_chat_fixtures.py ->
// tests/fixtures/chat_templates/renders.jsonl): every golden must match byte for byte.
#include "framework/chat/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hone::chat {
namespace {

using ::testing::HasSubstr;

const std::string kFixtures = std::string(HONE_SOURCE_DIR) + "/tests/fixtures/chat_templates";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

jinja::Value Json(const std::string& text) {
  bool ok = false;
  jinja::Value v = jinja::Value::FromJson(text, &ok);
  EXPECT_TRUE(ok) << text;
  return v;
}

TEST(ChatTemplate, EveryGoldenRendersByteForByte) {
  std::ifstream in(kFixtures + "/renders.jsonl");
  ASSERT_TRUE(in) << "missing renders.jsonl";
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    const jinja::Value record = Json(line);
    const std::string model = record.dict().Find("model")->str();
    const std::string where = model + "/" + record.dict().Find("case")->str() +
                              (record.dict().Find("add_generation_prompt")->Truthy() ? "+gen" : "");
    absl::StatusOr<ChatTemplate> chat = LoadChatTemplate(kFixtures + "/" + model);
    ASSERT_TRUE(chat.ok()) << chat.status();
    absl::StatusOr<std::string> text =
        RenderChat(*chat, *record.dict().Find("messages"), record.dict().Find("add_generation_prompt")->Truthy(),
                   record.dict().Find("extra")->dict());
    ASSERT_TRUE(text.ok()) << where << ": " << text.status();
    EXPECT_EQ(*text, record.dict().Find("text")->str()) << where;
    ++count;
  }
  EXPECT_GE(count, 30);
}

TEST(ChatTemplate, OneUserTurn) {
  absl::StatusOr<ChatTemplate> chat = LoadChatTemplate(kFixtures + "/qwen2_5");
  ASSERT_TRUE(chat.ok()) << chat.status();
  EXPECT_FALSE(chat->bos_token.has_value());
  EXPECT_EQ(chat->eos_token, "<|im_end|>");
  EXPECT_EQ(*RenderChat(*chat, {{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  absl::StatusOr<ChatTemplate> llama = LoadChatTemplate(kFixtures + "/llama3_1");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(*RenderChat(*llama, {{"user", " Hi "}}, true),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, ConfigForms) {
  absl::StatusOr<ChatTemplate> listed = ParseTokenizerConfig(
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ eos_token }}"}],
          "eos_token": {"content": "</s>"}})",
      "cfg.json");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*RenderChat(*listed, std::vector<ChatMessage>{}, true), "D</s>");
  EXPECT_THAT(ParseTokenizerConfig(R"({"eos_token": "x"})", "cfg.json").status().message(),
              HasSubstr("cfg.json has no chat_template"));
  EXPECT_THAT(ParseTokenizerConfig("{oops", "cfg.json").status().message(), HasSubstr("cfg.json: not a JSON object"));
  EXPECT_THAT(ParseTokenizerConfig(R"({"chat_template": "{% if %}"})", "cfg.json").status().message(),
              HasSubstr("cfg.json: chat_template: line 1, column"));
  EXPECT_THAT(LoadChatTemplate("/nonexistent").status().message(), HasSubstr("/nonexistent/tokenizer_config.json"));
  absl::StatusOr<ChatTemplate> raising = ParseTokenizerConfig(
      R"({"chat_template": "{{ raise_exception('Only user turns') }}"})", "cfg.json");
  ASSERT_TRUE(raising.ok());
  EXPECT_THAT(RenderChat(*raising, std::vector<ChatMessage>{}, true).status().message(), HasSubstr("raise_exception: Only user turns"));
}

// The goldens are what jinja2 renders today: re-run the generator and compare.
TEST(ChatTemplate, GoldensMatchLiveJinja2) {
  if (std::system("/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no jinja2 (apt-get install python3-jinja2)";
  }
  const std::string out = (std::filesystem::temp_directory_path() /
                           ("hone_chat_renders_" + std::to_string(::getpid()) + ".jsonl")).string();
  const std::string command = "/usr/bin/python3 " + std::string(HONE_SOURCE_DIR) +
                              "/tools/make_chat_fixtures.py --out " + out + " >/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_EQ(ReadFile(out), ReadFile(kFixtures + "/renders.jsonl"))
      << "run tools/make_chat_fixtures.py and commit the new renders.jsonl";
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace hone::chat
