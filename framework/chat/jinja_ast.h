// Internals of the Jinja2 interpreter (jinja.h): tokens, syntax tree and the three stages
// lexer (jinja_lexer.cc) -> parser (jinja_parser.cc) -> renderer (jinja_render.cc), plus
// the builtins (jinja_builtins.cc). Not an interface of its own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/chat/jinja.h"
#include "framework/chat/value.h"

namespace hone::jinja::internal {

constexpr int kMaxNesting = 128;  // parser: nested expressions and blocks

struct Pos {
  int line = 1;
  int column = 1;
};

// "line L, column C: message" as an InvalidArgument status.
absl::Status ErrorAt(Pos pos, std::string_view message);

struct Token {
  enum Type { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };
  Type type = kEof;
  std::string text;  // text, name, string value or operator
  int64_t int_value = 0;
  double float_value = 0;
  Pos pos;
};

absl::StatusOr<std::vector<Token>> Lex(std::string_view source, const TemplateOptions& options);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum Kind {
    kLiteral, kName, kList, kDict, kAttr, kItem, kSlice, kCall, kFilter, kTest,
    kNeg, kPos, kNot, kBinary, kCompare, kAnd, kOr, kCond
  };
  Kind kind = kLiteral;
  Pos pos;
  Value literal;
  std::string name;  // kName, kAttr attribute, kFilter/kTest name, kBinary operator
  // kList items; kDict key, value, key, value...; kAttr/kItem/kSlice/kCall/kFilter/kTest:
  // [0] the object, then the arguments (kSlice: start, stop, step, each maybe null);
  // kBinary/kAnd/kOr: [0] and [1]; kCompare: first operand then one per op; kCond: then,
  // condition, else (maybe null).
  std::vector<ExprPtr> args;
  std::vector<std::string> keyword_names;  // call/filter/test keyword arguments
  std::vector<ExprPtr> keyword_values;
  std::vector<std::string> ops;  // kCompare: "==", "<", "in", "not in", ...
  bool negated = false;          // kTest: `is not`
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;
struct Stmt {
  enum Kind { kText, kOutput, kIf, kFor, kSet, kSetAttr, kSetBlock, kMacro, kBreak, kContinue, kBlock };
  Kind kind = kText;
  Pos pos;
  std::string text;                  // kText
  ExprPtr expr;                      // kOutput, kSet/kSetAttr value, kFor iterable, kIf unused
  std::vector<ExprPtr> conditions;   // kIf: one per branch (else has none)
  std::vector<Body> branches;        // kIf: bodies (one more than conditions with else)
  std::vector<std::string> targets;  // kFor/kSet names; kSetAttr {namespace, attribute}; kMacro name
  ExprPtr filter;                    // kFor `if` condition
  Body body;                         // kFor, kSetBlock, kMacro, kBlock
  Body else_body;                    // kFor
  std::vector<std::string> params;   // kMacro
  std::vector<ExprPtr> defaults;     // kMacro, per param (maybe null)
};

struct Program {
  Body body;
};

absl::StatusOr<std::unique_ptr<Program>> Parse(const std::vector<Token>& tokens);

}  // namespace hone::jinja::internal

namespace hone::jinja::internal {

// --- jinja_builtins.cc: operations on values, with Python's rules ---
// Errors are plain messages; the renderer adds the position.

// The error for using undefined `v` in an operation that needs a value.
absl::Status UndefinedError(const Value& v);
absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& input, const CallArgs& args);
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& input, const CallArgs& args);
// obj.name: a str or dict method (bound), a dict or namespace entry, else undefined.
absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name);
// obj[key] (negative indices count from the end); undefined when absent.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// obj[start:stop:step]; null pointers are omitted bounds.
absl::StatusOr<Value> GetSlice(const Value& obj, const Value* start, const Value* stop, const Value* step);
// + - * / // % ** ~ ; results longer than max_bytes are an error.
absl::StatusOr<Value> BinaryOp(std::string_view op, const Value& a, const Value& b, size_t max_bytes);
absl::StatusOr<bool> Less(const Value& a, const Value& b);
absl::StatusOr<bool> Contains(const Value& container, const Value& item);
// The items a for loop visits: list items, dict keys, string characters; undefined -> none.
absl::StatusOr<List> Iterate(const Value& v);
// range, namespace, dict, raise_exception, strftime_now.
Dict Builtins();

}  // namespace hone::jinja::internal
