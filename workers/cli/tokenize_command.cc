// `hone tokenize`: text to token ids and back with a Hugging Face tokenizer.json, one
// output line per input line (no special tokens are added).
//
//   echo 'Hello world' | hone tokenize --tokenizer qwen3/tokenizer.json
//   -> 9707 1879
//   echo '9707 1879' | hone tokenize --tokenizer qwen3/tokenizer.json --decode
//   -> Hello world
//   hone tokenize --tokenizer qwen3/tokenizer.json 'Hello world'   (texts as arguments)
//
// A plain input line is the text without its newline, so texts containing newlines need
// --jsonl: every input line is then a JSON string ("a\nb"), and --decode prints JSON
// strings. Decoded bytes that are not valid UTF-8 (ids that cut a character) are printed
// raw, or as U+FFFD in --jsonl output. Output is flushed per line, so the command can serve
// as a co-process.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/status.h"
#include "framework/model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "workers/cli/command.h"

namespace hone::cli {
namespace {

using nlohmann::json;

struct TokenizeArgs {
  std::string tokenizer;
  bool decode = false;
  bool jsonl = false;
  std::vector<std::string> texts;  // positional: each is one input line, instead of stdin
};

absl::StatusOr<std::string> EncodeLine(const Tokenizer& tokenizer, const std::string& line,
                                       bool jsonl) {
  std::string text = line;
  if (jsonl) {
    try {
      const json value = json::parse(line);
      if (!value.is_string()) return absl::InvalidArgumentError("expected a JSON string");
      text = value.get<std::string>();
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("not a JSON string: ", e.what()));
    }
  }
  HONE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer.Encode(text));
  return absl::StrJoin(ids, " ");
}

absl::StatusOr<std::string> DecodeLine(const Tokenizer& tokenizer, const std::string& line,
                                       bool jsonl) {
  std::vector<int64_t> ids;
  for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty())) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(field, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", field, "\" is not an integer token id"));
    }
    ids.push_back(id);
  }
  HONE_ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(ids));
  if (!jsonl) return text;
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::Status RunTokenize(const TokenizeArgs& args) {
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(args.tokenizer));
  auto convert = [&](const std::string& line) {
    return args.decode ? DecodeLine(*tokenizer, line, args.jsonl) : EncodeLine(*tokenizer, line, args.jsonl);
  };
  for (size_t i = 0; i < args.texts.size(); ++i) {
    absl::StatusOr<std::string> out = convert(args.texts[i]);
    if (!out.ok()) return Annotate(out.status(), absl::StrCat("argument ", i + 1));
    std::cout << *out << '\n' << std::flush;
  }
  if (!args.texts.empty()) return absl::OkStatus();
  std::ios::sync_with_stdio(false);  // Line-at-a-time reads through C stdio are slow.
  std::string line;
  for (int64_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    absl::StatusOr<std::string> out = convert(line);
    if (!out.ok()) return Annotate(out.status(), absl::StrCat("input line ", line_no));
    std::cout << *out << '\n' << std::flush;
  }
  if (std::cin.bad()) return absl::DataLossError("reading stdin failed");
  return absl::OkStatus();
}

}  // namespace

CommandAction SetupTokenizeCommand(CLI::App& sub) {
  auto args = std::make_shared<TokenizeArgs>();
  sub.add_option("--tokenizer", args->tokenizer,
                 "tokenizer.json (Hugging Face format), or a model directory holding one")
      ->required();
  sub.add_flag("--decode", args->decode,
               "read lines of space-separated ids and print the text they decode to");
  sub.add_flag("--jsonl", args->jsonl,
               "texts are JSON strings, one per line (input when encoding, output when "
               "decoding), so they may contain newlines");
  sub.add_option("text", args->texts,
                 "texts (or, with --decode, id lists like \"9707 1879\") to convert, one output line each; "
                 "none: read lines from stdin");
  return [args] { return RunTokenize(*args); };
}

}  // namespace hone::cli
