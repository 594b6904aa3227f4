// Renderer: walks the syntax tree with a chain of scopes (builtins <- the caller's
// variables <- one scope per loop iteration or macro call), jinja2's scoping: `set` in a
// loop body stays in the loop, a namespace attribute assignment reaches outside.
#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"
#include "framework/core/status.h"

namespace hone::jinja {
namespace internal {
namespace {

constexpr int kMaxCallDepth = 64;  // macro calls

struct Scope {
  Dict vars;
  const Scope* parent = nullptr;
  const Value* Find(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      if (const Value* v = s->vars.Find(name)) return v;
    }
    return nullptr;
  }
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const TemplateOptions& options, Scope* root) : options_(options), root_(root) {}

  absl::Status Exec(const Body& body, Scope& scope, std::string& out, Flow* flow) {
    for (const StmtPtr& s : body) {
      HONE_RETURN_IF_ERROR(Step(s->pos));
      HONE_RETURN_IF_ERROR(ExecOne(*s, scope, out, flow));
      if (out.size() > options_.max_output_bytes) {
        return ErrorAt(s->pos, absl::StrCat("output longer than ", options_.max_output_bytes, " bytes"));
      }
      if (*flow != Flow::kNormal) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Step(Pos pos) {
    if (++steps_ > options_.max_steps) return ErrorAt(pos, "template takes too many steps to render");
    return absl::OkStatus();
  }

  // A builtin's plain error gets the position of the expression that failed.
  static absl::Status At(Pos pos, const absl::Status& status) {
    if (status.ok() || absl::StartsWith(status.message(), "line ")) return status;
    return ErrorAt(pos, std::string(status.message()));
  }

  absl::Status ExecOne(const Stmt& s, Scope& scope, std::string& out, Flow* flow) {
    switch (s.kind) {
      case Stmt::kText: out += s.text; return absl::OkStatus();
      case Stmt::kOutput: {
        HONE_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        out += v.ToString();
        return absl::OkStatus();
      }
      case Stmt::kIf:
        for (size_t i = 0; i < s.branches.size(); ++i) {
          bool take = i >= s.conditions.size();
          if (!take) {
            HONE_ASSIGN_OR_RETURN(Value c, Eval(*s.conditions[i], scope));
            take = c.Truthy();
          }
          if (take) return Exec(s.branches[i], scope, out, flow);
        }
        return absl::OkStatus();
      case Stmt::kFor: return ExecFor(s, scope, out);
      case Stmt::kSet: {
        HONE_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        return Assign(s, v, scope);
      }
      case Stmt::kSetAttr: {
        const Value* ns = scope.Find(s.targets[0]);
        if (ns == nullptr || ns->kind() != Value::Kind::kNamespace) {
          return ErrorAt(s.pos, absl::StrCat("cannot assign attribute on non-namespace object '", s.targets[0], "'"));
        }
        HONE_ASSIGN_OR_RETURN(Value v, Eval(*s.expr, scope));
        if (v.Reaches(ns->dict_identity())) {
          return ErrorAt(s.pos, absl::StrCat("cannot store namespace '", s.targets[0], "' inside itself (",
                                             s.targets[0], ".", s.targets[1], " would hold it)"));
        }
        ns->mutable_namespace().Set(s.targets[1], std::move(v));
        return absl::OkStatus();
      }
      case Stmt::kSetBlock: {
        std::string captured;
        Flow inner = Flow::kNormal;
        HONE_RETURN_IF_ERROR(Exec(s.body, scope, captured, &inner));
        Value v = Value::String(std::move(captured));
        if (s.filter) {
          HONE_ASSIGN_OR_RETURN(v, EvalFilter(*s.filter, v, scope));
        }
        scope.vars.Set(s.targets[0], std::move(v));
        return absl::OkStatus();
      }
      case Stmt::kMacro: scope.vars.Set(s.targets[0], MakeMacro(s)); return absl::OkStatus();
      case Stmt::kBreak: *flow = Flow::kBreak; return absl::OkStatus();
      case Stmt::kContinue: *flow = Flow::kContinue; return absl::OkStatus();
      case Stmt::kBlock: return Exec(s.body, scope, out, flow);
    }
    return absl::OkStatus();
  }

  absl::Status Assign(const Stmt& s, const Value& v, Scope& scope) {
    if (s.targets.size() == 1) {
      scope.vars.Set(s.targets[0], v);
      return absl::OkStatus();
    }
    absl::StatusOr<List> items = Iterate(v);
    if (!items.ok()) return At(s.pos, items.status());
    if (items->size() != s.targets.size()) {
      return ErrorAt(s.pos, absl::StrCat("cannot unpack ", items->size(), " values into ", s.targets.size(), " names"));
    }
    for (size_t i = 0; i < items->size(); ++i) scope.vars.Set(s.targets[i], (*items)[i]);
    return absl::OkStatus();
  }

  absl::Status ExecFor(const Stmt& s, Scope& scope, std::string& out) {
    HONE_ASSIGN_OR_RETURN(Value iterable, Eval(*s.expr, scope));
    absl::StatusOr<List> all = Iterate(iterable);
    if (!all.ok()) return At(s.expr->pos, all.status());
    List items;
    if (s.filter) {
      for (const Value& item : *all) {
        Scope probe{Dict{}, &scope};
        HONE_RETURN_IF_ERROR(Assign(s, item, probe));
        HONE_ASSIGN_OR_RETURN(Value keep, Eval(*s.filter, probe));
        if (keep.Truthy()) items.push_back(item);
      }
    } else {
      items = *std::move(all);
    }
    if (items.empty()) {
      Flow flow = Flow::kNormal;
      return Exec(s.else_body, scope, out, &flow);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      steps_ += 9;  // an iteration costs more than one node
      HONE_RETURN_IF_ERROR(Step(s.pos));
      Scope iteration{Dict{}, &scope};
      HONE_RETURN_IF_ERROR(Assign(s, items[static_cast<size_t>(i)], iteration));
      Dict loop;
      loop.Set("index0", Value::Int(i));
      loop.Set("index", Value::Int(i + 1));
      loop.Set("revindex0", Value::Int(n - 1 - i));
      loop.Set("revindex", Value::Int(n - i));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == n - 1));
      loop.Set("length", Value::Int(n));
      loop.Set("depth", Value::Int(1));
      loop.Set("depth0", Value::Int(0));
      loop.Set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("no previous item"));
      loop.Set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::Undefined("no next item"));
      loop.Set("cycle", Value::Callable("cycle", [i](const CallArgs& args) -> absl::StatusOr<Value> {
        if (args.positional.empty()) return absl::InvalidArgumentError("no items for cycling given");
        return args.positional[static_cast<size_t>(i) % args.positional.size()];
      }));
      iteration.vars.Set("loop", Value::MakeDict(std::move(loop)));
      Flow flow = Flow::kNormal;
      HONE_RETURN_IF_ERROR(Exec(s.body, iteration, out, &flow));
      if (flow == Flow::kBreak) break;
    }
    return absl::OkStatus();
  }

  Value MakeMacro(const Stmt& s) {
    return Value::Callable(s.targets[0], [this, &s](const CallArgs& args) -> absl::StatusOr<Value> {
      if (call_depth_ >= kMaxCallDepth) return absl::InvalidArgumentError("macro calls nested too deeply");
      if (args.positional.size() > s.params.size()) {
        return absl::InvalidArgumentError(absl::StrCat("macro '", s.targets[0], "' takes ", s.params.size(),
                                                       " arguments (", args.positional.size(), " given)"));
      }
      Scope frame{Dict{}, root_};
      for (size_t i = 0; i < s.params.size(); ++i) {
        const Value* given = i < args.positional.size() ? &args.positional[i] : nullptr;
        for (const auto& [k, v] : args.keyword) {
          if (k == s.params[i]) given = &v;
        }
        if (given != nullptr) {
          frame.vars.Set(s.params[i], *given);
        } else if (s.defaults[i]) {
          HONE_ASSIGN_OR_RETURN(Value d, Eval(*s.defaults[i], frame));
          frame.vars.Set(s.params[i], std::move(d));
        } else {
          frame.vars.Set(s.params[i], Value::Undefined(absl::StrCat("'", s.params[i], "' is undefined")));
        }
      }
      for (const auto& [k, unused] : args.keyword) {
        if (std::find(s.params.begin(), s.params.end(), k) == s.params.end()) {
          return absl::InvalidArgumentError(absl::StrCat("macro '", s.targets[0], "' takes no keyword argument '", k, "'"));
        }
      }
      ++call_depth_;
      std::string out;
      Flow flow = Flow::kNormal;
      absl::Status status = Exec(s.body, frame, out, &flow);
      --call_depth_;
      HONE_RETURN_IF_ERROR(status);
      return Value::String(std::move(out));
    });
  }

  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first, Scope& scope) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) {
      HONE_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i], scope));
      args.positional.push_back(std::move(v));
    }
    for (size_t i = 0; i < e.keyword_names.size(); ++i) {
      HONE_ASSIGN_OR_RETURN(Value v, Eval(*e.keyword_values[i], scope));
      args.keyword.emplace_back(e.keyword_names[i], std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> EvalFilter(const Expr& e, const Value& input, Scope& scope) {
    HONE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
    absl::StatusOr<Value> r = ApplyFilter(e.name, input, args);
    if (!r.ok()) return At(e.pos, r.status());
    return r;
  }

  absl::StatusOr<Value> Eval(const Expr& e, Scope& scope) {
    HONE_RETURN_IF_ERROR(Step(e.pos));
    absl::StatusOr<Value> r = EvalInner(e, scope);
    if (!r.ok()) return At(e.pos, r.status());
    return r;
  }

  absl::StatusOr<Value> EvalInner(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::kLiteral: return e.literal;
      case Expr::kName: {
        if (const Value* v = scope.Find(e.name)) return *v;
        return Value::Undefined(absl::StrCat("'", e.name, "' is undefined"));
      }
      case Expr::kList: {
        List items;
        for (const ExprPtr& a : e.args) {
          HONE_ASSIGN_OR_RETURN(Value v, Eval(*a, scope));
          items.push_back(std::move(v));
        }
        return e.negated ? Value::MakeTuple(std::move(items)) : Value::MakeList(std::move(items));
      }
      case Expr::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          HONE_ASSIGN_OR_RETURN(Value k, Eval(*e.args[i], scope));
          if (!k.is_string()) return ErrorAt(e.args[i]->pos, "dict keys must be strings");
          HONE_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1], scope));
          d.Set(k.str(), std::move(v));
        }
        return Value::MakeDict(std::move(d));
      }
      case Expr::kAttr: {
        HONE_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
        return GetAttr(obj, e.name);
      }
      case Expr::kItem: {
        HONE_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
        HONE_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1], scope));
        return GetItem(obj, key);
      }
      case Expr::kSlice: {
        HONE_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
        Value bounds[3];
        for (int k = 0; k < 3; ++k) {
          if (e.args[k + 1]) {
            HONE_ASSIGN_OR_RETURN(bounds[k], Eval(*e.args[k + 1], scope));
          }
        }
        return GetSlice(obj, e.args[1] ? &bounds[0] : nullptr, e.args[2] ? &bounds[1] : nullptr,
                        e.args[3] ? &bounds[2] : nullptr);
      }
      case Expr::kCall: {
        HONE_ASSIGN_OR_RETURN(Value callee, Eval(*e.args[0], scope));
        if (callee.is_undefined()) return UndefinedError(callee);
        if (callee.kind() != Value::Kind::kCallable) {
          return absl::InvalidArgumentError(absl::StrCat("'", callee.TypeName(), "' object is not callable"));
        }
        HONE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
        return callee.function()(args);
      }
      case Expr::kFilter: {
        HONE_ASSIGN_OR_RETURN(Value input, Eval(*e.args[0], scope));
        return EvalFilter(e, input, scope);
      }
      case Expr::kTest: {
        HONE_ASSIGN_OR_RETURN(Value input, Eval(*e.args[0], scope));
        HONE_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
        HONE_ASSIGN_OR_RETURN(bool pass, ApplyTest(e.name, input, args));
        return Value::Bool(pass != e.negated);
      }
      case Expr::kNeg:
      case Expr::kPos: {
        HONE_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
        if (v.is_undefined()) return UndefinedError(v);
        if (!v.is_number()) {
          return absl::InvalidArgumentError(absl::StrCat("bad operand type for unary ", e.kind == Expr::kNeg ? "-" : "+",
                                                         ": '", v.TypeName(), "'"));
        }
        if (e.kind == Expr::kPos) return v.kind() == Value::Kind::kBool ? Value::Int(v.int_value()) : v;
        if (v.kind() == Value::Kind::kFloat) return Value::Float(-v.AsDouble());
        if (v.int_value() == INT64_MIN) return absl::InvalidArgumentError("integer overflow");
        return Value::Int(-v.int_value());
      }
      case Expr::kNot: {
        HONE_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
        return Value::Bool(!v.Truthy());
      }
      case Expr::kAnd:
      case Expr::kOr: {  // Python: returns the deciding operand
        HONE_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0], scope));
        if (left.Truthy() == (e.kind == Expr::kOr)) return left;
        return Eval(*e.args[1], scope);
      }
      case Expr::kBinary: {
        HONE_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0], scope));
        HONE_ASSIGN_OR_RETURN(Value b, Eval(*e.args[1], scope));
        HONE_ASSIGN_OR_RETURN(Value r, BinaryOp(e.name, a, b, options_.max_output_bytes));
        // Building long strings and lists costs steps in proportion to their size.
        if (r.is_string()) steps_ += static_cast<int64_t>(r.str().size() / 64);
        if (r.is_list()) steps_ += static_cast<int64_t>(r.list().size() / 4);
        return r;
      }
      case Expr::kCompare: {
        HONE_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0], scope));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          HONE_ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1], scope));
          const std::string& op = e.ops[i];
          bool pass = false;
          if (op == "==") {
            pass = Equal(left, right);
          } else if (op == "!=") {
            pass = !Equal(left, right);
          } else if (op == "in" || op == "not in") {
            HONE_ASSIGN_OR_RETURN(pass, Contains(right, left));
            if (op == "not in") pass = !pass;
          } else if (op == "<" || op == ">=") {
            HONE_ASSIGN_OR_RETURN(pass, Less(left, right));
            if (op == ">=") pass = !pass;
          } else {
            HONE_ASSIGN_OR_RETURN(pass, Less(right, left));
            if (op == "<=") pass = !pass;
          }
          if (!pass) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::kCond: {
        HONE_ASSIGN_OR_RETURN(Value c, Eval(*e.args[1], scope));
        if (c.Truthy()) return Eval(*e.args[0], scope);
        if (!e.args[2]) return Value::Undefined("the conditional expression evaluated to false and had no else");
        return Eval(*e.args[2], scope);
      }
    }
    return absl::InternalError("unknown expression");
  }

  const TemplateOptions& options_;
  const Scope* root_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
};

}  // namespace
}  // namespace internal

absl::StatusOr<Template> Template::Parse(std::string_view source, const TemplateOptions& options) {
  HONE_ASSIGN_OR_RETURN(std::vector<internal::Token> tokens, internal::Lex(source, options));
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<internal::Program> program, internal::Parse(tokens));
  Template t;
  t.program_ = std::shared_ptr<const internal::Program>(std::move(program));
  t.options_ = options;
  return t;
}

absl::StatusOr<std::string> Template::Render(const Dict& variables) const {
  internal::Scope builtins{internal::Builtins(), nullptr};
  internal::Scope globals{variables, &builtins};
  internal::Scope top{Dict{}, &globals};
  internal::Renderer renderer(options_, &top);  // macros see the template's top-level names
  std::string out;
  internal::Flow flow = internal::Flow::kNormal;
  HONE_RETURN_IF_ERROR(renderer.Exec(program_->body, top, out, &flow));
  return out;
}

}  // namespace hone::jinja
