#!/usr/bin/env python3
"""Renders the chat templates of tests/fixtures/chat_templates/*/tokenizer_config.json with
Python's jinja2, the way transformers' apply_chat_template does, into renders.jsonl: the
goldens tests/chat/chat_template_test.cc checks Hone's own interpreter against.

transformers (utils/chat_template_utils.py) compiles a chat template in an
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, replaces the tojson filter by json.dumps(x, ensure_ascii=False, indent=None,
separators=None, sort_keys=False) (no HTML escaping), adds the globals raise_exception and
strftime_now, and renders with messages, tools=None, documents=None,
add_generation_prompt and the tokenizer's special tokens (bos_token, eos_token).
strftime_now is pinned to 26 Jul 2024 here so that the goldens do not depend on the day.

Usage: tools/make_chat_fixtures.py [--out FILE]   (default: the committed renders.jsonl)
Needs jinja2 (Debian: python3-jinja2).
"""
import argparse
import datetime
import json
import pathlib

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "chat_templates"
FIXED_NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)

USER = {"role": "user", "content": "What is 7+12-5?\nPut the final integer answer in \\boxed{}."}
SYSTEM = {"role": "system", "content": "You are a careful math tutor."}
MULTI = [
    SYSTEM,
    {"role": "user", "content": "  Add 2 and 3.  "},
    {"role": "assistant", "content": "2 + 3 = \\boxed{5}"},
    {"role": "user", "content": "Now double it: é, 中文, \"quotes\" & <tags>."},
]
THINK = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\n2 plus 2 is 4.\n</think>\n\nThe answer is \\boxed{4}."},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "<think>\nsix\n</think>\n\n\\boxed{6}"},
]

CASES = [
    ("single_user", [USER], {}),
    ("system_user", [SYSTEM, USER], {}),
    ("multi_turn", MULTI, {}),
    ("think", THINK, {}),
    ("think_disabled", [USER], {"enable_thinking": False}),
]


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_token(config, key):
    token = config.get(key)
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(FIXTURES / "renders.jsonl"))
    args = parser.parse_args()
    env = environment()
    lines = []
    for config_path in sorted(FIXTURES.glob("*/tokenizer_config.json")):
        model = config_path.parent.name
        config = json.loads(config_path.read_text(encoding="utf-8"))
        template = env.from_string(config["chat_template"])
        tokens = {k: special_token(config, k) for k in ("bos_token", "eos_token")}
        tokens = {k: v for k, v in tokens.items() if v is not None}
        for case, messages, extra in CASES:
            if "enable_thinking" in extra and model != "qwen3":
                continue
            for add_generation_prompt in (True, False):
                text = template.render(messages=messages, tools=None, documents=None,
                                       add_generation_prompt=add_generation_prompt, **tokens, **extra)
                lines.append(json.dumps({"model": model, "case": case, "add_generation_prompt": add_generation_prompt,
                                         "messages": messages, "extra": extra, "text": text}, ensure_ascii=False))
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} renders to {args.out}")


if __name__ == "__main__":
    main()
