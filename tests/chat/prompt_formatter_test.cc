// data.prompt_template: the named templates and `chat`, which renders the model's own
// chat template (tokenizer_config.json) with the task's instruction as the user turn.
#include "framework/data/prompt_formatter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "framework/data/dataset.h"

namespace hone::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string FixtureModelDir(const std::string& model) {
  return std::string(HONE_SOURCE_DIR) + "/tests/fixtures/chat_templates/" + model;
}

TEST(PromptFormatter, NamedTemplatesAreApplyPromptTemplate) {
  for (const std::string& name : PromptTemplateNames()) {
    absl::StatusOr<PromptFormatter> format = PromptFormatter::Create(name, "");
    ASSERT_TRUE(format.ok()) << name << ": " << format.status();
    EXPECT_EQ(*format->Format("2+3=?"), *ApplyPromptTemplate(name, "2+3=?")) << name;
  }
}

// The expected texts are written out by hand from the models' documented formats, not
// produced by our renderer.
TEST(PromptFormatter, ChatRendersQwen25WithItsOwnSystemPrompt) {
  absl::StatusOr<PromptFormatter> format = PromptFormatter::Create("chat", FixtureModelDir("qwen2_5"));
  ASSERT_TRUE(format.ok()) << format.status();
  EXPECT_EQ(*format->Format("2+3=?"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n2+3=? Please reason step by step, and put your final answer within \\boxed{}."
            "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(PromptFormatter, ChatRendersLlama3WithBosAndHeaders) {
  absl::StatusOr<PromptFormatter> format = PromptFormatter::Create("chat", FixtureModelDir("llama3"));
  ASSERT_TRUE(format.ok()) << format.status();
  EXPECT_EQ(*format->Format("2+3=?"),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n2+3=? Please reason step by step, and "
            "put your final answer within \\boxed{}.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(PromptFormatter, ChatWithoutATemplateNamesTheKeyAndTheFile) {
  const fs::path dir = fs::path(::testing::TempDir()) / "no_chat_model";
  fs::create_directories(dir);
  absl::StatusOr<PromptFormatter> missing = PromptFormatter::Create("chat", dir.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("data.prompt_template=chat"));
  EXPECT_THAT(missing.status().message(), HasSubstr("tokenizer_config.json"));

  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<s>"})";
  absl::StatusOr<PromptFormatter> no_template = PromptFormatter::Create("chat", dir.string());
  ASSERT_FALSE(no_template.ok());
  EXPECT_THAT(no_template.status().message(), HasSubstr("chat_template"));

  absl::StatusOr<PromptFormatter> no_dir = PromptFormatter::Create("chat", "");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_THAT(no_dir.status().message(), HasSubstr("model.init_config"));
}

TEST(PromptFormatter, UnknownNameListsChatToo) {
  absl::StatusOr<PromptFormatter> format = PromptFormatter::Create("chatml", "");
  ASSERT_FALSE(format.ok());
  EXPECT_THAT(format.status().message(), HasSubstr("data.prompt_template"));
  EXPECT_THAT(format.status().message(), HasSubstr("chat"));
}

}  // namespace
}  // namespace hone::data
