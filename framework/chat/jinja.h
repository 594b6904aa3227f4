// A Jinja2 subset interpreter, enough for the chat templates models ship in
// tokenizer_config.json (Qwen2.5, Qwen3, Llama 3.x and the like). Our own implementation,
// following jinja2's documented semantics; no libtorch.
//
// Syntax: {{ expr }}, {% stmt %}, {# comment #}, whitespace control ({%- -%}, {%+ +%}),
// trim_blocks / lstrip_blocks, {% raw %}. Statements: if/elif/else, for (loop.*, else,
// `if` filter, break/continue), set (name, tuple, ns.attr, block set), macro, generation.
// Expressions: literals, lists, dicts, tuples, attribute/item access, slices, calls with
// keyword arguments, filters, tests, arithmetic, comparisons, and/or/not, in/not in, ~,
// conditional expressions. Undefined values behave like jinja2's default Undefined.
// Builtins (jinja_builtins.cc): the filters, tests, globals (range, namespace, dict,
// raise_exception, strftime_now) and str/dict methods a chat template uses.
//
// Errors (syntax and render time) are absl::Status values whose message starts with
// "line L, column C: "; nothing throws. Parsing and rendering are bounded (nesting depth,
// output size, evaluation steps), so a hostile template fails instead of exhausting memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "framework/chat/value.h"

namespace hone::jinja {

struct TemplateOptions {
  bool trim_blocks = false;    // drop the first newline after a block tag
  bool lstrip_blocks = false;  // strip spaces and tabs before a block tag at the start of a line
  bool keep_trailing_newline = false;  // jinja2's default drops one trailing newline
  size_t max_output_bytes = 16 << 20;  // a render producing more is an error
  int64_t max_steps = 20'000'000;      // evaluation steps (nodes visited) per render
};

namespace internal {
struct Program;
}

class Template {
 public:
  // Parses `source`; the error names the line and column of the first problem.
  static absl::StatusOr<Template> Parse(std::string_view source, const TemplateOptions& options = {});

  // Renders with `variables` as the template's globals (next to the builtins).
  absl::StatusOr<std::string> Render(const Dict& variables) const;

 private:
  std::shared_ptr<const internal::Program> program_;
  TemplateOptions options_;
};

}  // namespace hone::jinja
