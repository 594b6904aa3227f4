// Fuzz target: the Jinja2 subset interpreter behind chat templates (framework/chat):
// parse arbitrary template text and, when it parses, render it with a few messages. Any
// outcome is fine except a crash, a hang past the step budget or an output past its cap.
//
// Input: byte 0 picks the options (trim/lstrip blocks, generation prompt); the rest is
// the template.
#include <cstdint>
#include <string>

#include "framework/chat/chat_template.h"
#include "framework/chat/jinja.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace hone::jinja;
  const uint8_t selector = data[0];
  const std::string_view source = hone::fuzz::AsView(data + 1, size - 1);
  TemplateOptions options;
  options.trim_blocks = (selector & 1) != 0;
  options.lstrip_blocks = (selector & 2) != 0;
  options.max_output_bytes = 1 << 20;
  options.max_steps = 200'000;
  absl::StatusOr<Template> parsed = Template::Parse(source, options);
  if (!parsed.ok()) {
    HONE_FUZZ_CHECK(parsed.status().message().rfind("line ", 0) == 0, std::string(parsed.status().message()));
    return 0;
  }
  Dict message;
  message.Set("role", Value::String("user"));
  message.Set("content", Value::String("What is 2+2? <think>\nhm\n</think> \\boxed{4}"));
  Dict system;
  system.Set("role", Value::String("system"));
  system.Set("content", Value::String("Be brief."));
  Dict vars;
  vars.Set("messages", Value::MakeList({Value::MakeDict(system), Value::MakeDict(message)}));
  vars.Set("add_generation_prompt", Value::Bool((selector & 4) != 0));
  vars.Set("bos_token", Value::String("<s>"));
  vars.Set("eos_token", Value::String("</s>"));
  vars.Set("tools", Value::None());
  absl::StatusOr<std::string> out = parsed->Render(vars);
  if (out.ok()) HONE_FUZZ_CHECK(out->size() <= options.max_output_bytes + 4096, "output cap");
  // The same text as a tokenizer_config.json chat_template must not crash either.
  (void)hone::chat::ParseTokenizerConfig(std::string(source), "fuzz.json");
  return 0;
}
