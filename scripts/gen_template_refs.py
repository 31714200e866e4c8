#!/usr/bin/env python3
"""Generate models/template_refs_test.go: reference renderings of real chat
templates, made by Python Jinja2 configured exactly as Hugging Face
transformers' apply_chat_template configures it.

    python3 scripts/gen_template_refs.py > models/template_refs_test.go && gofmt -w models/template_refs_test.go

Needs only python3 and jinja2 (3.1.x; transformers uses it). It is a
development-time tool: the Go tests embed its output and never run Python.
Rerun it after changing a template constant or a case below.

Inputs:
  * The templates are the Go string constants `const tmplXxx = `...`` in
    models/template_test.go (the published chat_template texts), read from
    that file so that Go and Python render the very same bytes.
  * The cases are below: each names a template constant, special tokens, a
    conversation in the shape of models.Message, tool objects as JSON text,
    add_generation_prompt, and extra template variables as JSON text.

Rendering follows transformers (src/transformers/utils/chat_template_utils.py):
  * jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True,
    lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    where AssistantTracker is transformers' {% generation %} ... {% endgeneration %}
    extension (here without the assistant-mask bookkeeping, which does not
    change the output);
  * filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=indent,
    separators=separators, sort_keys=sort_keys) with those defaults;
  * globals raise_exception (raises TemplateError(message)) and
    strftime_now (datetime.now().strftime(fmt), here with the clock fixed at
    FIXED_NOW so the output is reproducible; the Go test fixes
    TemplateOptions.Now to the same instant);
  * render(messages=..., tools=<list or None>, documents=None,
    add_generation_prompt=..., bos_token=..., eos_token=..., **extra).

Messages are turned into template dicts by the same rules as
models.messageValue / toolCallValue in models/template.go: "content" is
always present (None when the message has no content); "name",
"tool_call_id", "tool_calls", "reasoning_content" only when non-empty; a
tool call is {"id" (if any), "type": "function", "function": {"name",
"arguments"}} where arguments that are a JSON object are parsed into a dict
(as vLLM does), empty arguments become {}, and anything else stays a string.

A case whose rendering raises expects the error text of raise_exception; any
other exception aborts the generator.
"""

import datetime
import json
import os
import re
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_FILE = os.path.join(ROOT, "models", "template_test.go")

# Must equal fixedNow in models/template_test.go.
FIXED_NOW = datetime.datetime(2025, 7, 4, 15, 4, 5)

LLAMA = {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}
QWEN = {"bos": "", "eos": "<|im_end|>"}
MISTRAL = {"bos": "<s>", "eos": "</s>"}
GEMMA = {"bos": "<bos>", "eos": "<eos>"}


def load_templates():
    src = open(TEST_FILE, encoding="utf-8").read()
    return dict(re.findall(r"^const (tmpl\w+) = `([^`]*)`", src, re.M))


class AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} tag, rendering its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ---------------------------------------------------------------------------
# Conversation building blocks (models.Message fields).


def sys_(c):
    return {"role": "system", "content": c}


def user(c, **kw):
    return dict({"role": "user", "content": c}, **kw)


def asst(c, **kw):
    return dict({"role": "assistant", "content": c}, **kw)


def tool(c, call_id="", name=""):
    m = {"role": "tool", "content": c}
    if call_id:
        m["tool_call_id"] = call_id
    if name:
        m["name"] = name
    return m


def call(name, arguments, id=""):
    return {"id": id, "name": name, "arguments": arguments}


WEATHER_TOOL = json.dumps(
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given city; returns <temp> & conditions.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Zürich"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    ensure_ascii=False,
)
SEARCH_TOOL = (
    '{"type":"function","function":{"name":"web_search","description":"Search the web.",'
    '"parameters":{"type":"object","properties":{"query":{"type":"string"},'
    '"max_results":{"type":"integer","default":5},"min_score":{"type":"number","default":0.5}},'
    '"required":["query"]}}}'
)
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def weather_history(id1="call_0001", id2="call_0002"):
    """user -> assistant tool call -> tool result."""
    return [
        user("What's the weather in Paris?"),
        asst(None, tool_calls=[call("get_weather", '{"city": "Paris", "unit": "celsius"}', id1)]),
        tool('{"temperature": 21.0, "conditions": "sunny"}', id1, "get_weather"),
    ]


CASES = [
    # ---------------- Llama 3.1 ----------------
    ("llama31/system_user", "tmplLlama31", LLAMA, [sys_("You are a helpful assistant.  "), user("Hello!")], None, True, None),
    ("llama31/multi_turn_no_system", "tmplLlama31", LLAMA,
     [user("Hi"), asst("Hello! How can I help?"), user("  Tell me a joke.  ")], None, True, None),
    ("llama31/history_no_generation_prompt", "tmplLlama31", LLAMA,
     [sys_("Be terse."), user("2+2?"), asst("4")], None, False, None),
    ("llama31/tools_in_user_message", "tmplLlama31", LLAMA,
     [sys_("You can call tools."), user("What's the weather in Paris?")], TOOLS, True, None),
    ("llama31/tool_call_and_result", "tmplLlama31", LLAMA, weather_history(), TOOLS, True, None),
    ("llama31/tools_in_system_date_string", "tmplLlama31", LLAMA,
     [user("Weather in Zürich?")], [WEATHER_TOOL], True,
     {"tools_in_user_message": "false", "date_string": '"01 Jan 2025"'}),
    ("llama31/builtin_tools_python_tag", "tmplLlama31", LLAMA,
     [sys_("Answer with search."), user("Who won the 2022 World Cup?"),
      asst(None, tool_calls=[call("brave_search", '{"query": "2022 World Cup winner"}', "c1")]),
      tool("Argentina won.", "c1")], None, True,
     {"builtin_tools": '["brave_search", "wolfram_alpha", "code_interpreter"]'}),
    ("llama31/error_parallel_tool_calls", "tmplLlama31", LLAMA,
     [user("Weather in Paris and Rome?"),
      asst(None, tool_calls=[call("get_weather", '{"city": "Paris"}', "a"), call("get_weather", '{"city": "Rome"}', "b")])],
     TOOLS, True, None),
    ("llama31/error_tools_without_user", "tmplLlama31", LLAMA, [sys_("Only a system message.")], TOOLS, True, None),
    # ---------------- Llama 3.2 ----------------
    ("llama32/system_user_strftime_date", "tmplLlama32", LLAMA, [sys_("You are a helpful assistant."), user("What day is it?")], None, True, None),
    ("llama32/multi_turn", "tmplLlama32", LLAMA,
     [user("Hi <b>there</b> & welcome"), asst("Hello 👋"), user("Résumé please")], None, True, None),
    ("llama32/no_generation_prompt", "tmplLlama32", LLAMA, [user("Hi"), asst("Hello")], None, False, None),
    ("llama32/tools", "tmplLlama32", LLAMA, [user("Find news about Go 1.26")], TOOLS, True, None),
    ("llama32/tool_call_and_result", "tmplLlama32", LLAMA,
     [sys_("Use tools when needed.")] + weather_history() + [asst("It is 21 °C and sunny in Paris."), user("Thanks!")],
     TOOLS, True, None),
    ("llama32/date_string_override", "tmplLlama32", LLAMA, [user("Hi")], None, True, {"date_string": '"09 Sep 2099"'}),
    # ---------------- Qwen2.5 ----------------
    ("qwen25/default_system", "tmplQwen25", QWEN, [user("Hello")], None, True, None),
    ("qwen25/system_multi_turn", "tmplQwen25", QWEN,
     [sys_("You are Bob."), user("Hi"), asst("Hello, I'm Bob."), user("Who are you?")], None, True, None),
    ("qwen25/tools_default_system", "tmplQwen25", QWEN, [user("Weather in Paris?")], TOOLS, True, None),
    ("qwen25/parallel_tool_calls_and_results", "tmplQwen25", QWEN,
     [sys_("Be precise."), user("Weather in Paris and Rome?"),
      asst("Let me check both.", tool_calls=[call("get_weather", '{"city": "Paris"}', "call_1"),
                                             call("get_weather", '{"city":"Rome","unit":"celsius"}', "call_2")]),
      tool('{"temp": 21}', "call_1"), tool('{"temp": 25.5}', "call_2"),
      asst("Paris 21°, Rome 25.5°.")], TOOLS, False, None),
    ("qwen25/system_in_middle", "tmplQwen25", QWEN,
     [user("Hi"), asst("Hello"), sys_("Switch to French."), user("Bonjour?")], None, True, None),
    # ---------------- Qwen3 ----------------
    ("qwen3/system_user", "tmplQwen3", QWEN, [sys_("You are a helpful assistant."), user("Hi")], None, True, None),
    ("qwen3/enable_thinking_false", "tmplQwen3", QWEN, [user("Hi")], None, True, {"enable_thinking": "false"}),
    ("qwen3/enable_thinking_true", "tmplQwen3", QWEN, [user("Hi")], None, True, {"enable_thinking": "true"}),
    ("qwen3/history_think_stripped", "tmplQwen3", QWEN,
     [user("What is 2+2?"), asst("<think>\nSimple arithmetic.\n</think>\n\n2+2 = 4."), user("And 3+3?")], None, True, None),
    ("qwen3/reasoning_content_after_last_query", "tmplQwen3", QWEN,
     [sys_("Use tools."), user("Weather in Paris?"),
      asst("", reasoning_content="I should call get_weather.",
           tool_calls=[call("get_weather", '{"city": "Paris"}', "call_a")]),
      tool("sunny, 21C", "call_a")], TOOLS, True, None),
    ("qwen3/final_answer_no_generation_prompt", "tmplQwen3", QWEN,
     [user("Weather in Paris?"),
      asst(None, reasoning_content="Need the tool.", tool_calls=[call("get_weather", '{"city": "Paris"}', "x1")]),
      tool("sunny", "x1"), tool("warm", "x2"),
      asst("It is sunny and warm.", reasoning_content="Both results agree.")], TOOLS, False, None),
    ("qwen3/string_arguments", "tmplQwen3", QWEN,
     [user("Run it"), asst("", tool_calls=[call("web_search", "not json {", "c9")]), tool("ok", "c9")], TOOLS, True, None),
    ("qwen3/user_tool_response_lookalike", "tmplQwen3", QWEN,
     [user("Hi"), asst("<think>\nhello\n</think>\n\nHey"), user("<tool_response>\nfake\n</tool_response>")], None, True, None),
    # ---------------- Mistral v0.3 ----------------
    ("mistral/user", "tmplMistralV03", MISTRAL, [user("Hello")], None, True, None),
    ("mistral/system_multi_turn", "tmplMistralV03", MISTRAL,
     [sys_("Always answer in haiku."), user("Hi"), asst("  Hello there  "), user("What is Go?")], None, True, None),
    ("mistral/tools_call_result", "tmplMistralV03", MISTRAL,
     [user("Weather in Paris?"),
      asst(None, tool_calls=[call("get_weather", '{"city": "Paris", "unit": "celsius"}', "abcDEF123")]),
      tool('{"temperature": 21}', "abcDEF123"), asst("It is 21 °C."), user("Thanks")], TOOLS, False, None),
    ("mistral/identical_user_messages_with_tools", "tmplMistralV03", MISTRAL,
     [user("again"), asst("ok"), user("again")], [WEATHER_TOOL], True, None),
    ("mistral/error_tool_call_id", "tmplMistralV03", MISTRAL,
     [user("Weather?"), asst(None, tool_calls=[call("get_weather", '{"city": "Paris"}', "call_123456789")])], TOOLS, True, None),
    ("mistral/error_alternation", "tmplMistralV03", MISTRAL, [user("a"), user("b")], None, True, None),
    # ---------------- Gemma 2 ----------------
    ("gemma2/multi_turn", "tmplGemma2", GEMMA, [user("  Hi  "), asst("Hello!\n"), user("How are you?")], None, True, None),
    ("gemma2/no_generation_prompt", "tmplGemma2", GEMMA, [user("Hi")], None, False, None),
    ("gemma2/error_system_role", "tmplGemma2", GEMMA, [sys_("Be nice."), user("Hi")], None, True, None),
    ("gemma2/error_alternation", "tmplGemma2", GEMMA, [user("Hi"), user("Hi again")], None, True, None),
    # ---------------- Gemma 3 ----------------
    ("gemma3/system_user", "tmplGemma3", GEMMA, [sys_("You are a pirate."), user("Hello")], None, True, None),
    ("gemma3/multi_turn", "tmplGemma3", GEMMA, [user("Hi"), asst(" Arr! "), user("Where is the treasure?")], None, True, None),
    ("gemma3/no_generation_prompt", "tmplGemma3", GEMMA, [sys_("S"), user("Q"), asst("A")], None, False, None),
    ("gemma3/error_assistant_first", "tmplGemma3", GEMMA, [asst("I start."), user("Hi")], None, True, None),
    ("gemma3/error_tool_role", "tmplGemma3", GEMMA, [user("Hi"), tool("result")], None, True, None),
    # ---------------- Library features real templates rely on ----------------
    ("features/whitespace_control", "tmplWhitespace", MISTRAL, [user("a"), asst("b")], None, True, None),
    ("features/filters_methods_tests", "tmplFeatures", MISTRAL,
     [sys_("  Be brief.  "), user("Hi <you> & \"me\"", name="alice"), asst("Hello, alice!"), user("split,these,words")],
     TOOLS, True, {"enable_thinking": "false", "flags": '{"z": 1, "a": [1.0, 2.5, 1e20, -0.0001, 12345678901234567890.0], "s": "é\\u2028\\u0001"}'}),
]


def to_template_message(m):
    out = {"role": m["role"], "content": m["content"]}
    if m.get("name"):
        out["name"] = m["name"]
    if m.get("tool_call_id"):
        out["tool_call_id"] = m["tool_call_id"]
    if m.get("tool_calls"):
        calls = []
        for c in m["tool_calls"]:
            args = c["arguments"]
            if args.strip() == "":
                args = {}
            elif args.strip().startswith("{"):
                try:
                    args = json.loads(args)
                except ValueError:
                    pass
            tc = {}
            if c["id"]:
                tc["id"] = c["id"]
            tc["type"] = "function"
            tc["function"] = {"name": c["name"], "arguments": args}
            calls.append(tc)
        out["tool_calls"] = calls
    if m.get("reasoning_content"):
        out["reasoning_content"] = m["reasoning_content"]
    return out


def go_quote(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o in (0x2028, 0x2029, 0xFEFF):
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_message(m):
    fields = ["Role: " + go_quote(m["role"])]
    if m["content"] is not None:
        fields.append("Content: " + go_quote(m["content"]))
        fields.append("HasContent: true")
    if m.get("name"):
        fields.append("Name: " + go_quote(m["name"]))
    if m.get("tool_call_id"):
        fields.append("ToolCallID: " + go_quote(m["tool_call_id"]))
    if m.get("tool_calls"):
        calls = ", ".join(
            "{ID: %s, Name: %s, Arguments: %s}" % (go_quote(c["id"]), go_quote(c["name"]), go_quote(c["arguments"]))
            for c in m["tool_calls"]
        )
        fields.append("ToolCalls: []ToolCall{%s}" % calls)
    if m.get("reasoning_content"):
        fields.append("ReasoningContent: " + go_quote(m["reasoning_content"]))
    return "{" + ", ".join(fields) + "}"


def main():
    templates = load_templates()
    env = make_env()
    compiled = {}
    w = sys.stdout.write
    w("// Code generated by scripts/gen_template_refs.py with Python Jinja2 %s; DO NOT EDIT.\n\n" % jinja2.__version__)
    w("package models\n\n")
    w("var templateRefCases = []templateRefCase{\n")
    for name, tmpl_name, tokens, msgs, tools, agp, extra in CASES:
        if tmpl_name not in templates:
            sys.exit("template constant %s not found in %s" % (tmpl_name, TEST_FILE))
        if tmpl_name not in compiled:
            compiled[tmpl_name] = env.from_string(templates[tmpl_name])
        kwargs = {k: json.loads(v) for k, v in (extra or {}).items()}
        ctx = {"bos_token": tokens["bos"], "eos_token": tokens["eos"]}
        ctx.update(kwargs)
        ctx.update(
            messages=[to_template_message(m) for m in msgs],
            tools=[json.loads(t) for t in tools] if tools else None,
            documents=None,
            add_generation_prompt=agp,
        )
        want, want_err = "", ""
        try:
            want = compiled[tmpl_name].render(**ctx)
        except jinja2.exceptions.TemplateError as e:
            if type(e) is not jinja2.exceptions.TemplateError:
                raise
            want_err = str(e)
        w("\t{\n")
        w("\t\tname: %s,\n" % go_quote(name))
        w("\t\ttemplate: %s,\n" % tmpl_name)
        w("\t\tbos: %s,\n" % go_quote(tokens["bos"]))
        w("\t\teos: %s,\n" % go_quote(tokens["eos"]))
        w("\t\tmessages: []Message{\n")
        for m in msgs:
            w("\t\t\t%s,\n" % go_message(m))
        w("\t\t},\n")
        if tools:
            w("\t\ttools: []string{%s},\n" % ", ".join(go_quote(t) for t in tools))
        w("\t\taddGenerationPrompt: %s,\n" % ("true" if agp else "false"))
        if extra:
            w("\t\textra: map[string]string{%s},\n" % ", ".join("%s: %s" % (go_quote(k), go_quote(v)) for k, v in extra.items()))
        if want_err:
            w("\t\twantErr: %s,\n" % go_quote(want_err))
        else:
            w("\t\twant: %s,\n" % go_quote(want))
        w("\t},\n")
    w("}\n")


if __name__ == "__main__":
    main()
