// `hone generate`: sample responses from a model directory, to one prompt (--prompt) or to
// every prompt of a file or stdin (--prompts-file: JSONL with a "prompt" field, or plain text lines),
// with one JSON line out per prompt. --chat wraps each prompt in the model's chat template
// (tokenizer_config.json) as the one user turn; --print-prompt prints the prompt text and stops.
#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/chat/chat_template.h"
#include "framework/core/status.h"
#include "framework/engine/engine.h"
#include "framework/model/pretrained.h"
#include "nlohmann/json.hpp"
#include "workers/cli/command.h"
#include "workers/cli/threads.h"
#include "workers/cli/validators.h"

namespace hone::cli {
namespace {

using nlohmann::json;

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string prompts_file;
  SamplingParams sampling;
  int threads = 1;
  bool show_logprobs = false;
  bool chat = false;          // render each prompt through the model's chat template
  bool print_prompt = false;  // print the (rendered) prompt text exactly, then stop
};

// The prompts of --prompts-file (`-`: standard input): a line starting with '{' is a JSON
// object whose "prompt" field is the prompt; any other non-blank line is the prompt itself.
absl::StatusOr<std::vector<std::string>> ReadPrompts(const std::string& path) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("--prompts-file: cannot open ", path));
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    if (line[first] != '{') {
      prompts.push_back(line);
      continue;
    }
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": bad JSON"));
    auto prompt = record.find("prompt");
    if (prompt == record.end() || !prompt->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ",
                                                     prompt == record.end() ? "missing field \"prompt\""
                                                                            : "field \"prompt\" is not a string"));
    }
    prompts.push_back(prompt->get<std::string>());
  }
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat("--prompts-file: ", path, " holds no prompts"));
  return prompts;
}

absl::StatusOr<std::string> ResponseText(const Pretrained& policy, const GeneratedSequence& seq) {
  std::vector<int64_t> text_tokens;  // special tokens (the stop token) are not text
  for (int64_t token : seq.tokens) {
    if (!policy.tokenizer->IsSpecialToken(token)) text_tokens.push_back(token);
  }
  return policy.tokenizer->Decode(text_tokens);
}

// One token's text as a JSON string, so that spaces, newlines and partial UTF-8 (a byte of
// a multi-byte character, replaced by U+FFFD) stay visible: "\u0120the" reads as " the".
// A special token shows as its vocabulary entry ("<|im_end|>").
std::string TokenTextForDisplay(const Tokenizer& tokenizer, int64_t id) {
  std::string text;
  if (tokenizer.IsSpecialToken(id)) {
    text = tokenizer.IdToToken(id).value_or("");
  } else {
    const int64_t ids[] = {id};
    absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
    text = decoded.ok() ? *decoded : tokenizer.IdToToken(id).value_or("");
  }
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::Status RunGenerate(GenerateOptions o) {
  if (o.prompt.empty() == o.prompts_file.empty()) {
    return absl::InvalidArgumentError("give exactly one of --prompt TEXT and --prompts-file FILE");
  }
  SetComputeThreads(o.threads);
  std::vector<std::string> prompts = {o.prompt};
  if (!o.prompts_file.empty()) {
    HONE_ASSIGN_OR_RETURN(prompts, ReadPrompts(o.prompts_file));
  }
  if (o.chat) {
    absl::StatusOr<chat::ChatTemplate> tmpl = chat::LoadChatTemplate(o.model);
    if (!tmpl.ok()) return Annotate(tmpl.status(), "--chat");
    for (std::string& prompt : prompts) {
      HONE_ASSIGN_OR_RETURN(prompt, chat::RenderChat(*tmpl, {{"user", prompt}}, /*add_generation_prompt=*/true));
    }
  }
  if (o.print_prompt) {
    for (const std::string& prompt : prompts) std::cout << prompt;
    std::cout.flush();
    return absl::OkStatus();
  }
  HONE_ASSIGN_OR_RETURN(Pretrained policy, LoadPretrained(o.model));
  std::vector<std::vector<int64_t>> prompt_ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, policy.tokenizer->Encode(prompts[i]));
    if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i + 1, " encodes to no tokens"));
    const int64_t longest = static_cast<int64_t>(ids.size()) + o.sampling.max_new_tokens;
    if (longest > policy.model->config().max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ", i + 1, " is ", ids.size(), " tokens: with --max-new-tokens ", o.sampling.max_new_tokens,
          " that exceeds the model's max_position_embeddings=", policy.model->config().max_position_embeddings));
    }
    prompt_ids.push_back(std::move(ids));
  }
  o.sampling.stop_token_ids = policy.stop_token_ids;
  GenerationEngine engine(policy.model);
  const auto start = std::chrono::steady_clock::now();
  HONE_ASSIGN_OR_RETURN(GenerationResult result, engine.Generate(prompt_ids, o.sampling));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t p = 0; p < prompts.size(); ++p) {
    json record = {{"index", p}, {"prompt", prompts[p]}, {"responses", json::array()},
                   {"finish_reasons", json::array()}, {"logprobs", json::array()}};
    for (int64_t j = 0; j < o.sampling.n; ++j) {
      const GeneratedSequence& seq = result.sequences[static_cast<int64_t>(p) * o.sampling.n + j];
      HONE_ASSIGN_OR_RETURN(std::string text, ResponseText(policy, seq));
      double logprob_sum = 0;
      for (float lp : seq.logprobs) logprob_sum += lp;
      if (!o.prompts_file.empty()) {
        record["responses"].push_back(text);
        record["finish_reasons"].push_back(FinishReasonName(seq.finish));
        record["logprobs"].push_back(logprob_sum);
        continue;
      }
      std::cout << absl::StrFormat("--- sample %d (%d tokens, finish=%s, logprob=%.3f)\n", j, seq.tokens.size(),
                                   FinishReasonName(seq.finish), logprob_sum);
      std::cout << prompts[p] << text << "\n";
      if (o.show_logprobs) {
        for (size_t t = 0; t < seq.tokens.size(); ++t) {
          std::cout << absl::StrFormat("  %d %.4f %s\n", seq.tokens[t], seq.logprobs[t],
                                       TokenTextForDisplay(*policy.tokenizer, seq.tokens[t]));
        }
      }
    }
    if (!o.prompts_file.empty()) std::cout << record.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  std::cerr << absl::StrFormat("generated %d tokens for %d prompt(s) in %.2f s (%.0f tokens/s)\n", result.new_tokens,
                               prompts.size(), seconds, result.new_tokens / seconds);
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupGenerateCommand(CLI::App& sub) {
  auto o = std::make_shared<GenerateOptions>();
  sub.add_option("--model", o->model, "model directory (config.json, model.safetensors, tokenizer.json)")
      ->required();
  auto* prompt = sub.add_option("--prompt", o->prompt, "prompt text");
  sub.add_option("--prompts-file", o->prompts_file,
                 "file of prompts (- = standard input): JSONL with a \"prompt\" field, or one plain prompt per "
                 "line; prints one JSON line per prompt (prompt, responses, finish_reasons, logprobs)")
      ->excludes(prompt);
  sub.add_option("--n", o->sampling.n, "samples")->check(NumberIn(1, 1 << 16));
  sub.add_option("--temperature", o->sampling.temperature, "sampling temperature; 0 = greedy")->check(NonNegative());
  sub.add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens; 0 = off")->check(NonNegative());
  sub.add_option("--top-p", o->sampling.top_p, "nucleus mass; 1 = off")->check(NumberIn(0.0, 1.0));
  sub.add_option("--max-new-tokens", o->sampling.max_new_tokens, "longest response")->check(NumberIn(1, 1 << 20));
  sub.add_option("--seed", o->sampling.seed, "sampling seed")->check(SeedValue());
  sub.add_option("--threads", o->threads, "intra-op threads")->check(NumberIn(1, 256));
  sub.add_flag("--chat", o->chat,
               "wrap each prompt in the model's chat template (chat_template of tokenizer_config.json in --model) "
               "as the one user turn, with the generation prompt");
  sub.add_flag("--print-prompt", o->print_prompt,
               "print the prompt text exactly as the model would see it (after --chat) and exit without generating");
  sub.add_flag("--logprobs", o->show_logprobs, "print each token id with its log-probability and its text, as a JSON string (--prompt only)");
  return [o]() { return RunGenerate(*o); };
}

}  // namespace hone::cli
