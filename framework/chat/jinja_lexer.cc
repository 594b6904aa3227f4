// Lexer: template text -> tokens. Text between tags becomes kText tokens with jinja2's
// whitespace control already applied (`-` strips, lstrip_blocks, trim_blocks), newlines
// normalised to "\n"; inside a tag, expression tokens.
#include <cctype>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "framework/chat/jinja_ast.h"

namespace hone::jinja::internal {

absl::Status ErrorAt(Pos pos, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", pos.line, ", column ", pos.column, ": ", std::string(message)));
}

namespace {

class Lexer {
 public:
  Lexer(std::string_view src, const TemplateOptions& options) : src_(src), options_(options) {}

  absl::StatusOr<std::vector<Token>> Run() {
    bool strip_next = false;  // a `-` closed the previous tag
    bool trim_next = false;   // trim_blocks applies to the next text
    while (at_ < src_.size()) {
      const size_t open = FindTagOpen(at_);
      std::string text(src_.substr(at_, open == std::string_view::npos ? std::string_view::npos : open - at_));
      const Pos text_pos = PosOf(at_);
      if (strip_next) {
        text.erase(0, text.find_first_not_of(" \t\r\n\f\v"));
        if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) text.clear();
      } else if (trim_next) {
        if (text.rfind("\r\n", 0) == 0) {
          text.erase(0, 2);
        } else if (!text.empty() && (text[0] == '\n' || text[0] == '\r')) {
          text.erase(0, 1);
        }
      }
      strip_next = trim_next = false;
      if (open == std::string_view::npos) {
        if (!options_.keep_trailing_newline) DropTrailingNewline(text);
        Emit(Token::kText, std::move(text), text_pos);
        at_ = src_.size();
        break;
      }
      const char kind = src_[open + 1];  // '{', '%' or '#'
      const char modifier = open + 2 < src_.size() ? src_[open + 2] : '\0';
      const bool is_block = kind == '%' || kind == '#';
      if (modifier == '-') {
        text.erase(text.find_last_not_of(" \t\r\n\f\v") + 1);
        if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos) text.clear();
      } else if (is_block && options_.lstrip_blocks && modifier != '+') {
        LstripLine(text, open);
      }
      Emit(Token::kText, std::move(text), text_pos);
      at_ = open + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
      bool close_strip = false, close_plus = false;
      if (kind == '#') {
        const size_t end = src_.find("#}", at_);
        if (end == std::string_view::npos) return ErrorAt(PosOf(open), "unterminated comment: missing '#}'");
        close_strip = end > at_ && src_[end - 1] == '-';
        close_plus = end > at_ && src_[end - 1] == '+';
        at_ = end + 2;
      } else {
        const Pos tag_pos = PosOf(open);
        Emit(kind == '{' ? Token::kVarBegin : Token::kBlockBegin, "", tag_pos);
        const size_t first_token = tokens_.size();
        absl::Status status = LexTag(kind == '{' ? '}' : '%', tag_pos, &close_strip, &close_plus);
        if (!status.ok()) return status;
        Emit(kind == '{' ? Token::kVarEnd : Token::kBlockEnd, "", PosOf(at_));
        if (kind == '%' && tokens_.size() == first_token + 2 && tokens_[first_token].type == Token::kName &&
            tokens_[first_token].text == "raw") {
          tokens_.resize(first_token - 1);  // {% raw %} itself leaves no tokens
          status = LexRaw(tag_pos, close_strip);
          if (!status.ok()) return status;
          close_strip = raw_close_strip_;
          close_plus = raw_close_plus_;
        }
      }
      if (close_strip) {
        strip_next = true;
      } else if (is_block && options_.trim_blocks && !close_plus) {
        trim_next = true;
      }
    }
    Emit(Token::kEof, "", PosOf(src_.size()));
    return std::move(tokens_);
  }

 private:
  // The next "{{", "{%" or "{#" at or after `from`.
  size_t FindTagOpen(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  Pos PosOf(size_t offset) {
    // Positions are asked for in increasing order, almost always: count incrementally.
    if (offset < pos_offset_) {
      pos_offset_ = 0;
      pos_ = Pos{};
    }
    for (; pos_offset_ < offset && pos_offset_ < src_.size(); ++pos_offset_) {
      if (src_[pos_offset_] == '\n') {
        ++pos_.line;
        pos_.column = 1;
      } else {
        ++pos_.column;
      }
    }
    return pos_;
  }

  void Emit(Token::Type type, std::string text, Pos pos) {
    if (type == Token::kText) {
      if (text.empty()) return;
      // jinja2 writes every newline of template data as "\n".
      std::string normalised;
      normalised.reserve(text.size());
      for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
          normalised += '\n';
          if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        } else {
          normalised += text[i];
        }
      }
      text = std::move(normalised);
    }
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.pos = pos;
    tokens_.push_back(std::move(t));
  }

  // lstrip_blocks: spaces and tabs between the start of the line and a block tag go.
  void LstripLine(std::string& text, size_t tag_offset) const {
    size_t i = tag_offset;
    while (i > 0 && (src_[i - 1] == ' ' || src_[i - 1] == '\t')) --i;
    if (i != 0 && src_[i - 1] != '\n' && src_[i - 1] != '\r') return;
    const size_t strip = tag_offset - i;
    if (strip <= text.size()) text.erase(text.size() - strip);
  }

  static void DropTrailingNewline(std::string& text) {
    if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\r\n") == 0) {
      text.resize(text.size() - 2);
    } else if (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.pop_back();
    }
  }

  // Tokens up to the tag's closing "}}" / "%}" (with an optional '-' or '+' before it).
  absl::Status LexTag(char close, Pos tag_pos, bool* close_strip, bool* close_plus) {
    int brackets = 0;
    while (true) {
      while (at_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[at_]))) ++at_;
      if (at_ >= src_.size()) {
        return ErrorAt(tag_pos, close == '}' ? "unterminated '{{': missing '}}'" : "unterminated '{%': missing '%}'");
      }
      const char c = src_[at_];
      const char next = at_ + 1 < src_.size() ? src_[at_ + 1] : '\0';
      const char next2 = at_ + 2 < src_.size() ? src_[at_ + 2] : '\0';
      if (brackets == 0 || close == '%') {
        if (c == close && next == '}') {
          at_ += 2;
          return absl::OkStatus();
        }
        if ((c == '-' || c == '+') && next == close && next2 == '}') {
          (c == '-' ? *close_strip : *close_plus) = true;
          at_ += 3;
          return absl::OkStatus();
        }
      }
      const Pos pos = PosOf(at_);
      if (c == '\'' || c == '"') {
        absl::Status s = LexString(pos);
        if (!s.ok()) return s;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        LexNumber(pos);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = at_;
        while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
        Emit(Token::kName, std::string(src_.substr(at_, end - at_)), pos);
        at_ = end;
      } else {
        static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op;
        for (std::string_view two : kTwo) {
          if (src_.substr(at_, 2) == two) op = std::string(two);
        }
        if (op.empty()) {
          if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
            return ErrorAt(pos, absl::StrCat("unexpected character '", std::string(1, c), "'"));
          }
          op = std::string(1, c);
        }
        if (op == "{") ++brackets;  // only braces can hide a "}}" ({{ {'a': {'b': 1}} }})
        if (op == "}" && brackets > 0) --brackets;
        Emit(Token::kOp, op, pos);
        at_ += op.size();
      }
    }
  }

  absl::Status LexString(Pos pos) {
    const char quote = src_[at_++];
    std::string value;
    while (true) {
      if (at_ >= src_.size()) return ErrorAt(pos, "unterminated string literal");
      const char c = src_[at_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (at_ >= src_.size()) return ErrorAt(pos, "unterminated string literal");
      const char e = src_[at_++];
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '0': value += '\0'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case 'a': value += '\a'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (at_ + digits > src_.size()) return ErrorAt(pos, "truncated \\x/\\u escape in string literal");
          uint32_t cp = 0;
          for (size_t k = 0; k < digits; ++k) {
            const char h = src_[at_ + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) return ErrorAt(pos, "bad \\x/\\u escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          at_ += digits;
          if (cp > 0x10FFFF) return ErrorAt(pos, "escape out of the Unicode range in string literal");
          AppendUtf8(cp, value);
          break;
        }
        default:
          value += '\\';  // Python keeps unknown escapes as written
          value += e;
      }
    }
    Emit(Token::kString, std::move(value), pos);
    return absl::OkStatus();
  }

  static void AppendUtf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  void LexNumber(Pos pos) {
    size_t end = at_;
    bool is_float = false;
    while (end < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
    if (end + 1 < src_.size() && src_[end] == '.' && std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      ++end;
      while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        end = e;
        while (end < src_.size() && std::isdigit(static_cast<unsigned char>(src_[end]))) ++end;
      }
    }
    std::string digits;
    for (size_t i = at_; i < end; ++i) {
      if (src_[i] != '_') digits += src_[i];
    }
    Token t;
    t.pos = pos;
    t.text = digits;
    errno = 0;
    const long long parsed = is_float ? 0 : std::strtoll(digits.c_str(), nullptr, 10);
    if (is_float || errno == ERANGE) {
      t.type = Token::kFloat;
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      t.type = Token::kInt;
      t.int_value = parsed;
    }
    tokens_.push_back(std::move(t));
    at_ = end;
  }

  // After {% raw %}: everything up to {% endraw %} is text.
  absl::Status LexRaw(Pos tag_pos, bool strip_leading) {
    for (size_t i = src_.find("{%", at_); i != std::string_view::npos; i = src_.find("{%", i + 2)) {
      size_t j = i + 2;
      const bool strip_before = j < src_.size() && src_[j] == '-';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ++j;
      while (j < src_.size() && std::isspace(static_cast<unsigned char>(src_[j]))) ++j;
      if (src_.substr(j, 6) != "endraw") continue;
      j += 6;
      while (j < src_.size() && std::isspace(static_cast<unsigned char>(src_[j]))) ++j;
      raw_close_strip_ = raw_close_plus_ = false;
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) {
        (src_[j] == '-' ? raw_close_strip_ : raw_close_plus_) = true;
        ++j;
      }
      if (src_.substr(j, 2) != "%}") continue;
      std::string text(src_.substr(at_, i - at_));
      if (strip_leading) text.erase(0, text.find_first_not_of(" \t\r\n\f\v"));
      if (strip_before) {
        text.erase(text.find_last_not_of(" \t\r\n\f\v") + 1);
      } else if (options_.lstrip_blocks) {
        LstripLine(text, i);
      }
      if (text.find_first_not_of(" \t\r\n\f\v") == std::string::npos && (strip_leading || strip_before)) text.clear();
      Emit(Token::kText, std::move(text), PosOf(at_));
      at_ = j + 2;
      return absl::OkStatus();
    }
    return ErrorAt(tag_pos, "unterminated '{% raw %}': missing '{% endraw %}'");
  }

  std::string_view src_;
  TemplateOptions options_;
  size_t at_ = 0;
  std::vector<Token> tokens_;
  size_t pos_offset_ = 0;
  Pos pos_;
  bool raw_close_strip_ = false, raw_close_plus_ = false;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Lex(std::string_view source, const TemplateOptions& options) {
  return Lexer(source, options).Run();
}

}  // namespace hone::jinja::internal
