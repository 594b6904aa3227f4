// Parser: tokens -> syntax tree, by recursive descent with jinja2's operator precedence
// (lowest first): conditional `a if c else b`, or, and, not, comparisons (==, !=, <, >,
// <=, >=, in, not in), + -, ~, * / // %, **, unary - +, then postfix (.attr, [item],
// (call)) and filters/tests (| name, is name).
#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"
#include "framework/core/status.h"

namespace hone::jinja::internal {
namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  absl::StatusOr<std::unique_ptr<Program>> Run() {
    auto program = std::make_unique<Program>();
    std::string end;
    HONE_ASSIGN_OR_RETURN(program->body, ParseBody({}, &end, Pos{}));
    return program;
  }

 private:
  // --- token helpers ---
  const Token& Cur() const { return t_[i_]; }
  const Token& Next() {
    const Token& t = t_[i_];
    if (t.type != Token::kEof) ++i_;
    return t;
  }
  bool IsOp(std::string_view op) const { return Cur().type == Token::kOp && Cur().text == op; }
  bool IsName(std::string_view name) const { return Cur().type == Token::kName && Cur().text == name; }
  bool AcceptOp(std::string_view op) {
    if (!IsOp(op)) return false;
    ++i_;
    return true;
  }
  bool AcceptName(std::string_view name) {
    if (!IsName(name)) return false;
    ++i_;
    return true;
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Token::kText: return "template text";
      case Token::kVarBegin: return "'{{'";
      case Token::kVarEnd: return "'}}'";
      case Token::kBlockBegin: return "'{%'";
      case Token::kBlockEnd: return "'%}'";
      case Token::kName: return absl::StrCat("'", t.text, "'");
      case Token::kString: return "a string";
      case Token::kInt:
      case Token::kFloat: return absl::StrCat("number ", t.text);
      case Token::kOp: return absl::StrCat("'", t.text, "'");
      case Token::kEof: return "end of template";
    }
    return "?";
  }
  absl::Status Unexpected(std::string_view expected) const {
    return ErrorAt(Cur().pos, absl::StrCat("expected ", std::string(expected), ", got ", Describe(Cur())));
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!AcceptOp(op)) return Unexpected(absl::StrCat("'", std::string(op), "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().type != Token::kBlockEnd) return Unexpected("'%}'");
    ++i_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName(std::string_view what) {
    if (Cur().type != Token::kName) return Unexpected(what);
    return Next().text;
  }
  absl::Status Enter() {
    if (++depth_ > kMaxNesting) return ErrorAt(Cur().pos, "template nested too deeply");
    return absl::OkStatus();
  }
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  };
  static ExprPtr Make(Expr::Kind kind, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // --- statements ---
  // Parses until a block tag whose keyword is one of `ends` (consumed; its name goes to
  // *end, the rest of that tag is the caller's) or, with no `ends`, the end of input.
  absl::StatusOr<Body> ParseBody(const std::vector<std::string_view>& ends, std::string* end, Pos opened) {
    HONE_RETURN_IF_ERROR(Enter());
    Leave leave{depth_};
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == Token::kEof) {
        if (ends.empty()) return body;
        return ErrorAt(opened, absl::StrCat("unterminated block: missing {% ", std::string(ends.back()), " %}"));
      }
      if (t.type == Token::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::kText;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        ++i_;
      } else if (t.type == Token::kVarBegin) {
        ++i_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::kOutput;
        s->pos = t.pos;
        HONE_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
        if (Cur().type != Token::kVarEnd) return Unexpected("'}}'");
        ++i_;
        body.push_back(std::move(s));
      } else if (t.type == Token::kBlockBegin) {
        ++i_;
        if (Cur().type != Token::kName) return Unexpected("a statement name");
        for (std::string_view e : ends) {
          if (Cur().text == e) {
            *end = Next().text;
            return body;
          }
        }
        HONE_ASSIGN_OR_RETURN(StmtPtr s, ParseStatement(t.pos));
        body.push_back(std::move(s));
      } else {
        return Unexpected("template text or a tag");
      }
    }
  }

  absl::StatusOr<StmtPtr> ParseStatement(Pos pos) {
    auto s = std::make_unique<Stmt>();
    s->pos = pos;
    const std::string keyword = Next().text;
    std::string end;
    if (keyword == "if") {
      s->kind = Stmt::kIf;
      HONE_ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(true));
      s->conditions.push_back(std::move(cond));
      HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      while (true) {
        HONE_ASSIGN_OR_RETURN(Body b, ParseBody({"elif", "else", "endif"}, &end, pos));
        s->branches.push_back(std::move(b));
        if (end == "elif") {
          HONE_ASSIGN_OR_RETURN(ExprPtr c, ParseTuple(true));
          s->conditions.push_back(std::move(c));
          HONE_RETURN_IF_ERROR(ExpectBlockEnd());
        } else if (end == "else") {
          HONE_RETURN_IF_ERROR(ExpectBlockEnd());
          HONE_ASSIGN_OR_RETURN(Body e, ParseBody({"endif"}, &end, pos));
          s->branches.push_back(std::move(e));
          break;
        } else {
          break;
        }
      }
    } else if (keyword == "for") {
      s->kind = Stmt::kFor;
      do {
        HONE_ASSIGN_OR_RETURN(std::string target, ExpectName("a loop variable"));
        s->targets.push_back(std::move(target));
      } while (AcceptOp(","));
      if (!AcceptName("in")) return Unexpected("'in'");
      HONE_ASSIGN_OR_RETURN(s->expr, ParseTuple(false));
      if (AcceptName("if")) {
        HONE_ASSIGN_OR_RETURN(s->filter, ParseExpression(false));
      }
      if (IsName("recursive")) return ErrorAt(Cur().pos, "recursive loops are not supported");
      HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      HONE_ASSIGN_OR_RETURN(s->body, ParseBody({"else", "endfor"}, &end, pos));
      if (end == "else") {
        HONE_RETURN_IF_ERROR(ExpectBlockEnd());
        HONE_ASSIGN_OR_RETURN(s->else_body, ParseBody({"endfor"}, &end, pos));
      }
    } else if (keyword == "set") {
      HONE_ASSIGN_OR_RETURN(std::string first, ExpectName("a variable name"));
      s->targets.push_back(first);
      s->kind = Stmt::kSet;
      if (AcceptOp(".")) {
        HONE_ASSIGN_OR_RETURN(std::string attribute, ExpectName("an attribute name"));
        s->targets.push_back(std::move(attribute));
        s->kind = Stmt::kSetAttr;
      } else {
        while (AcceptOp(",")) {
          HONE_ASSIGN_OR_RETURN(std::string more, ExpectName("a variable name"));
          s->targets.push_back(std::move(more));
        }
      }
      if (AcceptOp("=")) {
        HONE_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
      } else if (s->kind == Stmt::kSet && s->targets.size() == 1) {
        s->kind = Stmt::kSetBlock;
        if (AcceptOp("|")) {  // {% set x | filter %}...{% endset %}
          auto holder = Make(Expr::kLiteral, Cur().pos);
          HONE_ASSIGN_OR_RETURN(s->filter, ParseFilter(std::move(holder)));
        }
      } else {
        return Unexpected("'='");
      }
      HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      if (s->kind == Stmt::kSetBlock) {
        HONE_ASSIGN_OR_RETURN(s->body, ParseBody({"endset"}, &end, pos));
        HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      }
      return s;
    } else if (keyword == "macro") {
      s->kind = Stmt::kMacro;
      HONE_ASSIGN_OR_RETURN(std::string name, ExpectName("a macro name"));
      s->targets.push_back(std::move(name));
      HONE_RETURN_IF_ERROR(ExpectOp("("));
      while (!IsOp(")")) {
        HONE_ASSIGN_OR_RETURN(std::string param, ExpectName("a parameter name"));
        s->params.push_back(std::move(param));
        ExprPtr def;
        if (AcceptOp("=")) {
          HONE_ASSIGN_OR_RETURN(def, ParseExpression(true));
        }
        s->defaults.push_back(std::move(def));
        if (!AcceptOp(",")) break;
      }
      HONE_RETURN_IF_ERROR(ExpectOp(")"));
      HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      HONE_ASSIGN_OR_RETURN(s->body, ParseBody({"endmacro"}, &end, pos));
    } else if (keyword == "break" || keyword == "continue") {
      s->kind = keyword == "break" ? Stmt::kBreak : Stmt::kContinue;
      return ExpectBlockEnd().ok() ? absl::StatusOr<StmtPtr>(std::move(s)) : Unexpected("'%}'");
    } else if (keyword == "generation") {  // transformers' AssistantTracker: renders its body
      s->kind = Stmt::kBlock;
      HONE_RETURN_IF_ERROR(ExpectBlockEnd());
      HONE_ASSIGN_OR_RETURN(s->body, ParseBody({"endgeneration"}, &end, pos));
    } else {
      return ErrorAt(pos, absl::StrCat("unknown tag '", keyword, "'"));
    }
    // The rest of the closing tag ({% endif %}, {% endfor %}, ...).
    HONE_RETURN_IF_ERROR(ExpectBlockEnd());
    return s;
  }

  // --- expressions ---
  // expr[, expr...]: a tuple when there is a comma (`{% set a = 1, 2 %}`).
  absl::StatusOr<ExprPtr> ParseTuple(bool with_conditional) {
    const Pos pos = Cur().pos;
    HONE_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(with_conditional));
    if (!IsOp(",")) return first;
    auto tuple = Make(Expr::kList, pos);
    tuple->negated = true;  // marks a tuple
    tuple->args.push_back(std::move(first));
    while (AcceptOp(",")) {
      if (Cur().type == Token::kVarEnd || Cur().type == Token::kBlockEnd || IsOp(")")) break;
      HONE_ASSIGN_OR_RETURN(ExprPtr more, ParseExpression(with_conditional));
      tuple->args.push_back(std::move(more));
    }
    return tuple;
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_conditional) {
    HONE_RETURN_IF_ERROR(Enter());
    Leave leave{depth_};
    const Pos pos = Cur().pos;
    HONE_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    if (!with_conditional) return e;
    while (AcceptName("if")) {
      auto cond = Make(Expr::kCond, pos);
      cond->args.push_back(std::move(e));
      HONE_ASSIGN_OR_RETURN(ExprPtr test, ParseOr());
      cond->args.push_back(std::move(test));
      ExprPtr otherwise;
      if (AcceptName("else")) {
        HONE_ASSIGN_OR_RETURN(otherwise, ParseExpression(true));
      }
      cond->args.push_back(std::move(otherwise));
      e = std::move(cond);
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    HONE_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      auto e = Make(Expr::kOr, Next().pos);
      HONE_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      e->args.push_back(std::move(left));
      e->args.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    HONE_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      auto e = Make(Expr::kAnd, Next().pos);
      HONE_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      e->args.push_back(std::move(left));
      e->args.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      HONE_RETURN_IF_ERROR(Enter());
      Leave leave{depth_};
      auto e = Make(Expr::kNot, Next().pos);
      HONE_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      e->args.push_back(std::move(operand));
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const Pos pos = Cur().pos;
    HONE_ASSIGN_OR_RETURN(ExprPtr first, ParseBinary(0));
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == Token::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == ">" ||
           Cur().text == "<=" || Cur().text == ">=")) {
        op = Next().text;
      } else if (AcceptName("in")) {
        op = "in";
      } else if (IsName("not") && t_[i_ + 1].type == Token::kName && t_[i_ + 1].text == "in") {
        i_ += 2;
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::kCompare, pos);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      HONE_ASSIGN_OR_RETURN(ExprPtr right, ParseBinary(0));
      cmp->args.push_back(std::move(right));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  // Binary operators by level: 0 + -, 1 ~, 2 * / // %, 3 **.
  absl::StatusOr<ExprPtr> ParseBinary(int level) {
    if (level == 4) return ParseUnary(true);
    static const std::vector<std::vector<std::string_view>> kLevels = {
        {"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
    HONE_ASSIGN_OR_RETURN(ExprPtr left, ParseBinary(level + 1));
    while (true) {
      bool matched = false;
      for (std::string_view op : kLevels[level]) matched = matched || IsOp(op);
      if (!matched) return left;
      auto e = Make(Expr::kBinary, Cur().pos);
      e->name = Next().text;
      HONE_ASSIGN_OR_RETURN(ExprPtr right, ParseBinary(level + 1));
      e->args.push_back(std::move(left));
      e->args.push_back(std::move(right));
      left = std::move(e);
    }
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    HONE_RETURN_IF_ERROR(Enter());
    Leave leave{depth_};
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      const Expr::Kind kind = IsOp("-") ? Expr::kNeg : Expr::kPos;
      e = Make(kind, Next().pos);
      HONE_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
      e->args.push_back(std::move(operand));
    } else {
      HONE_ASSIGN_OR_RETURN(e, ParsePrimary());
    }
    HONE_ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    if (!with_filter) return e;
    while (true) {
      if (AcceptOp("|")) {
        HONE_ASSIGN_OR_RETURN(e, ParseFilter(std::move(e)));
      } else if (IsName("is")) {
        HONE_ASSIGN_OR_RETURN(e, ParseTest(std::move(e)));
      } else if (IsOp("(")) {
        HONE_ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
      } else {
        return e;
      }
    }
  }

  // After '|': name[(args)], then more postfix.
  absl::StatusOr<ExprPtr> ParseFilter(ExprPtr operand) {
    auto e = Make(Expr::kFilter, Cur().pos);
    HONE_ASSIGN_OR_RETURN(e->name, ExpectName("a filter name"));
    while (AcceptOp(".")) {
      HONE_ASSIGN_OR_RETURN(std::string part, ExpectName("a filter name"));
      absl::StrAppend(&e->name, ".", part);
    }
    e->args.push_back(std::move(operand));
    if (IsOp("(")) HONE_RETURN_IF_ERROR(ParseCallArgs(*e));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseTest(ExprPtr operand) {
    auto e = Make(Expr::kTest, Next().pos);  // 'is'
    e->negated = AcceptName("not");
    HONE_ASSIGN_OR_RETURN(e->name, ExpectName("a test name"));
    e->args.push_back(std::move(operand));
    if (IsOp("(")) {
      HONE_RETURN_IF_ERROR(ParseCallArgs(*e));
    } else if ((Cur().type == Token::kName || Cur().type == Token::kString || Cur().type == Token::kInt ||
                Cur().type == Token::kFloat || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and") && !IsName("if") && !IsName("in") &&
               !IsName("not") && !IsName("is")) {
      HONE_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
      HONE_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
      e->args.push_back(std::move(arg));
    }
    return e;
  }

  // '(' [arg {, arg}] ')' where arg is expr or name=expr.
  absl::Status ParseCallArgs(Expr& call) {
    HONE_RETURN_IF_ERROR(ExpectOp("("));
    while (!IsOp(")")) {
      if (Cur().type == Token::kName && t_[i_ + 1].type == Token::kOp && t_[i_ + 1].text == "=") {
        call.keyword_names.push_back(Next().text);
        ++i_;
        HONE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        call.keyword_values.push_back(std::move(value));
      } else {
        if (!call.keyword_names.empty()) return ErrorAt(Cur().pos, "positional argument after a keyword argument");
        HONE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        call.args.push_back(std::move(value));
      }
      if (!AcceptOp(",")) break;
    }
    return ExpectOp(")");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr e) {
    while (true) {
      const Pos pos = Cur().pos;
      if (AcceptOp(".")) {
        if (Cur().type == Token::kInt) {  // x.0 is x[0]
          auto item = Make(Expr::kItem, pos);
          item->args.push_back(std::move(e));
          auto index = Make(Expr::kLiteral, pos);
          index->literal = Value::Int(Next().int_value);
          item->args.push_back(std::move(index));
          e = std::move(item);
          continue;
        }
        auto attr = Make(Expr::kAttr, pos);
        HONE_ASSIGN_OR_RETURN(attr->name, ExpectName("an attribute name"));
        attr->args.push_back(std::move(e));
        e = std::move(attr);
      } else if (AcceptOp("[")) {
        HONE_RETURN_IF_ERROR(Enter());
        Leave leave{depth_};
        ExprPtr parts[3];
        bool is_slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!IsOp(":") && !IsOp("]")) {
            HONE_ASSIGN_OR_RETURN(parts[k], ParseExpression(true));
          }
          if (k < 2 && AcceptOp(":")) {
            is_slice = true;
          } else {
            break;
          }
        }
        HONE_RETURN_IF_ERROR(ExpectOp("]"));
        if (!is_slice && !parts[0]) return ErrorAt(pos, "empty subscript");
        auto sub = Make(is_slice ? Expr::kSlice : Expr::kItem, pos);
        sub->args.push_back(std::move(e));
        sub->args.push_back(std::move(parts[0]));
        if (is_slice) {
          sub->args.push_back(std::move(parts[1]));
          sub->args.push_back(std::move(parts[2]));
        }
        e = std::move(sub);
      } else if (IsOp("(")) {
        auto call = Make(Expr::kCall, pos);
        call->args.push_back(std::move(e));
        HONE_RETURN_IF_ERROR(ParseCallArgs(*call));
        e = std::move(call);
      } else {
        return e;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Cur();
    auto literal = [&](Value v) {
      auto e = Make(Expr::kLiteral, t.pos);
      e->literal = std::move(v);
      ++i_;
      return e;
    };
    switch (t.type) {
      case Token::kName: {
        if (t.text == "true" || t.text == "True") return literal(Value::Bool(true));
        if (t.text == "false" || t.text == "False") return literal(Value::Bool(false));
        if (t.text == "none" || t.text == "None") return literal(Value::None());
        auto e = Make(Expr::kName, t.pos);
        e->name = t.text;
        ++i_;
        return e;
      }
      case Token::kString: {
        std::string s = t.text;
        auto e = literal(Value());
        while (Cur().type == Token::kString) s += Next().text;  // adjacent strings concatenate
        e->literal = Value::String(std::move(s));
        return e;
      }
      case Token::kInt: return literal(Value::Int(t.int_value));
      case Token::kFloat: return literal(Value::Float(t.float_value));
      case Token::kOp: break;
      default: return Unexpected("an expression");
    }
    if (AcceptOp("(")) {
      if (AcceptOp(")")) {
        auto e = Make(Expr::kList, t.pos);
        e->negated = true;
        return e;
      }
      HONE_ASSIGN_OR_RETURN(ExprPtr inner, ParseTuple(true));
      HONE_RETURN_IF_ERROR(ExpectOp(")"));
      return inner;
    }
    if (AcceptOp("[")) {
      auto e = Make(Expr::kList, t.pos);
      while (!IsOp("]")) {
        HONE_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
        e->args.push_back(std::move(item));
        if (!AcceptOp(",")) break;
      }
      HONE_RETURN_IF_ERROR(ExpectOp("]"));
      return e;
    }
    if (AcceptOp("{")) {
      auto e = Make(Expr::kDict, t.pos);
      while (!IsOp("}")) {
        HONE_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
        HONE_RETURN_IF_ERROR(ExpectOp(":"));
        HONE_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->args.push_back(std::move(key));
        e->args.push_back(std::move(value));
        if (!AcceptOp(",")) break;
      }
      HONE_RETURN_IF_ERROR(ExpectOp("}"));
      return e;
    }
    return Unexpected("an expression");
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Program>> Parse(const std::vector<Token>& tokens) { return Parser(tokens).Run(); }

}  // namespace hone::jinja::internal
