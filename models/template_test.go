package models

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The chat templates below are typed in from the models' published
// tokenizer_config.json "chat_template" values. scripts/gen_template_refs.py
// reads these constants, renders them with Python Jinja2 set up as Hugging
// Face transformers sets it up, and writes the expected prompts into
// template_refs_test.go; TestTemplateRefs checks that Render reproduces
// them byte for byte.

// fixedNow is the strftime_now clock of the reference renderings (FIXED_NOW
// in scripts/gen_template_refs.py).
var fixedNow = time.Date(2025, 7, 4, 15, 4, 5, 0, time.Local)

// tmplLlama31 is the chat_template of Llama 3.1 Instruct (meta-llama/Llama-3.1-8B-Instruct; Llama 3.3 70B ships the same template), as published in its
// tokenizer_config.json.
const tmplLlama31 = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`

// tmplLlama32 is the chat_template of Llama 3.2 Instruct text models (meta-llama/Llama-3.2-1B-Instruct, -3B-Instruct), as published in its
// tokenizer_config.json.
const tmplLlama32 = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`

// tmplQwen25 is the chat_template of Qwen2.5 Instruct (Qwen/Qwen2.5-7B-Instruct and the other sizes), as published in its
// tokenizer_config.json.
const tmplQwen25 = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`

// tmplQwen3 is the chat_template of Qwen3 (Qwen/Qwen3-8B and the other hybrid-thinking sizes), as published in its
// tokenizer_config.json.
const tmplQwen3 = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}`

// tmplMistralV03 is the chat_template of Mistral Instruct v0.3 (mistralai/Mistral-7B-Instruct-v0.3), as published in its
// tokenizer_config.json.
const tmplMistralV03 = `{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
`

// tmplGemma2 is the chat_template of Gemma 2 instruction-tuned (google/gemma-2-9b-it, -2b-it, -27b-it), as published in its
// tokenizer_config.json.
const tmplGemma2 = `{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}`

// tmplGemma3 is the chat_template of Gemma 3 instruction-tuned (google/gemma-3-27b-it and the other sizes), as published in its
// tokenizer_config.json.
const tmplGemma3 = `{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
`

// tmplWhitespace is not a model's template: it exercises Jinja2's
// whitespace control (trim markers, "+" markers, lstrip_blocks,
// trim_blocks, comments, adjacent tags, the trailing newline).
const tmplWhitespace = `  {% if true %}
start
  {% endif %}
{#- comment strips left #}
Reasoning Effort: {{ 'Max' }}{%- if true -%}{%- endif -%} tail
A: {{ 'x' }}{% if true %}{% endif %}  B
    {{ 'indented var keeps its indentation' }}
    {% for m in messages %}
    [{{ m.role }}]{% if not loop.last %},{% endif %}
    {% endfor %}
  {# an indented comment #}
  {%+ if true %}plus keeps indentation{% endif +%}
after plus
{% if true -%}
   stripped left of this text
{%- endif %}
x {% if true %} y {% endif %} z
{%- for m in messages -%}
    {{ m.content }}
{%- endfor %}
{% set s %}
  block set body
{% endset %}[{{ s }}]
{{ '-' }}{{- ' joined' -}}   {{ 'to this' }}
  {% if false %}never{% else %}else branch{% endif %}

{% macro m(x) -%}
  [{{ x }}]
{%- endmacro %}
{{ m(1) }}  {{ m(2) }}
trailing text line

`

// tmplFeatures is not a model's template: it exercises the Jinja features
// and the tojson / strftime_now glue that real chat templates rely on.
const tmplFeatures = `{#- Not a model's template: exercises the Jinja features and the tojson/strftime_now glue that real chat templates rely on. -#}
{{- bos_token }}
{%- set ns = namespace(users=0, last_user=-1, seen=[]) %}
{%- for m in messages %}
    {%- if m.role == 'user' %}
        {%- set ns.users = ns.users + 1 %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
users={{ ns.users }} last_user={{ ns.last_user }}
{% if messages[0]['role'] == 'system' %}
system=[{{ messages[0]['content'] | trim }}] strip=[{{ messages[0].content.strip() }}] lstrip=[{{ messages[0].content.lstrip() }}] rstrip=[{{ messages[0].content.rstrip(' ') }}]
{% set loop_messages = messages[1:] %}
{% else %}
{% set loop_messages = messages %}
{% endif %}
roles={{ loop_messages | map(attribute='role') | join(',') }} reversed={{ (messages[::-1] | map(attribute='role') | list) | join('>') }} but_last={{ messages[:-1] | length }}
users_by_filter={{ messages | selectattr('role', 'equalto', 'user') | list | length }} non_users={{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }} named={{ messages | selectattr('name', 'defined') | map(attribute='name') | first }}
{% for m in loop_messages %}
{% if m.role == 'assistant' %}{% continue %}{% endif %}
{{ loop.index }}/{{ loop.length }} {{ m.role | upper }} {{ m.content | lower }}{% if m.name is defined %} name={{ m.name | capitalize }}{% endif %}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %}

{% if loop.index >= 3 %}{% break %}{% endif %}
{% endfor %}
words={{ messages[-1].content.split(',') | join(' ') }} last_word={{ messages[-1].content.split(',')[-1] }} title={{ messages[-1].content.replace(',', ' ').title() }} starts={{ messages[-1].content.startswith('split') }} ends={{ messages[-1].content.endswith('x') }}
{{ 'tool count: ' ~ (tools | length) ~ ', names: ' ~ (tools | map(attribute='function') | map(attribute='name') | join(', ')) }}
{%- for t in tools %}

{{ t | tojson }}
{{ t.function.parameters | tojson(indent=2) }}
{% for key, val in t.function.items() if key != 'parameters' %}{{ key }}={{ val | tojson }};{% endfor %}
{% for key, val in t.function.parameters.properties | items %}{{ key }}:{{ val.type | default('any') }}:{{ val.default is defined }}{% if not loop.last %},{% endif %}{% endfor %}

{%- endfor %}

flags={{ flags | tojson }}
sorted={{ flags | tojson(sort_keys=true) }}
ascii={{ flags | tojson(ensure_ascii=true) }}
compact={{ flags.a | tojson(separators=(',', ':')) }}
tab={{ flags | tojson(indent='\t') }}
msg={{ messages[1] | tojson }}
chain={{ messages | map(attribute='role') | list | tojson }} nested={{ (flags.s | tojson) | tojson }} dict={{ {'n': messages | length, 'ok': true, 'none': none} | tojson }}
{%- set out = messages[2] | tojson %}
sliced={{ out[:-1] }}, "extra": 1}
concat={{ 'args: ' + flags.a | tojson }}
date={{ strftime_now('%Y-%m-%d %H:%M:%S') }} | {{ strftime_now('%d %b %Y') }} | {{ strftime_now('%A %B %-d, %I:%M %p, day %j, week %U/%W, %y %e') }}
tests={{ flags is mapping }},{{ tools is mapping }},{{ 'x' is string }},{{ 3 is string }},{{ none is none }},{{ flags.zz is defined }},{{ flags.z is defined }},{{ 'z' in flags }},{{ 'q' in flags }},{{ 'lit' in 'split,these' }},{{ 'user' in (messages | map(attribute='role') | list) }}
misc={{ flags.missing | default('dflt') }},{{ '' | default('empty', true) }},{{ '42' | int + 1 }},{{ 7 | string + '!' }},{{ 'abc' | list | join('-') }},{{ (messages | first).role }},{{ (messages | last).content }},{{ 'x' if enable_thinking is false else 'y' }},{{ (flags | items | list | length) }},{{ 'ab' | safe }}
{% macro turn(role, content='') %}<{{ role }}>{{ content | trim }}</{{ role }}>{% endmacro %}
{{ turn('user', ' hi ') }}{{ turn('assistant') }}
{% set block %}captured {{ messages | length }}{% endset %}
{{ block }}
{% if add_generation_prompt %}{{ '[ASSISTANT]' }}{% endif %}
`

// templateRefCase is one reference rendering (see template_refs_test.go).
type templateRefCase struct {
	name                string
	template            string
	bos, eos            string
	messages            []Message
	tools               []string
	addGenerationPrompt bool
	extra               map[string]string // JSON text per variable
	want                string
	wantErr             string // raise_exception message
}

func (c *templateRefCase) input() RenderInput {
	in := RenderInput{Messages: c.messages, AddGenerationPrompt: c.addGenerationPrompt}
	for _, t := range c.tools {
		in.Tools = append(in.Tools, json.RawMessage(t))
	}
	if len(c.extra) > 0 {
		in.Extra = map[string]any{}
		for k, v := range c.extra {
			in.Extra[k] = json.RawMessage(v)
		}
	}
	return in
}

func TestTemplateRefs(t *testing.T) {
	parsed := map[string]*Template{}
	for i := range templateRefCases {
		c := &templateRefCases[i]
		t.Run(c.name, func(t *testing.T) {
			key := c.template + "\x00" + c.bos + "\x00" + c.eos
			tmpl := parsed[key]
			if tmpl == nil {
				var err error
				tmpl, err = ParseTemplate(c.template, TemplateOptions{BOSToken: c.bos, EOSToken: c.eos, Now: func() time.Time { return fixedNow }})
				if err != nil {
					t.Fatalf("ParseTemplate: %v", err)
				}
				parsed[key] = tmpl
			}
			got, err := tmpl.Render(c.input())
			if c.wantErr != "" {
				var re *RaiseError
				if !errors.As(err, &re) {
					t.Fatalf("Render error = %v (%T), want *RaiseError %q; output %q", err, err, c.wantErr, got)
				}
				if err.Error() != c.wantErr {
					t.Fatalf("Render error = %q, want %q", err.Error(), c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != c.want {
				t.Errorf("Render mismatch\n%s", firstDiff(got, c.want))
			}
		})
	}
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-80, 0)
	cut := func(s string) string {
		s = s[from:]
		if len(s) > 240 {
			s = s[:240]
		}
		return strconv.Quote(s)
	}
	return "first difference at byte " + strconv.Itoa(i) + "\n got: …" + cut(got) + "\nwant: …" + cut(want)
}

func TestParseTemplateError(t *testing.T) {
	for _, src := range []string{
		"{% if messages %}unterminated",
		"{{ messages[0 }}",
		"{% for m in messages %}{{ m.content }}",
		"{% endif %}",
	} {
		if _, err := ParseTemplate(src, TemplateOptions{}); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded, want an error", src)
		}
	}
}

func TestRaiseExceptionMessage(t *testing.T) {
	tmpl, err := ParseTemplate(`{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('Tool role "' ~ m.role ~ '" is not supported!') }}{% endif %}{{ m.content }}{% endfor %}`, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(RenderInput{Messages: []Message{{Role: "user", Content: "a", HasContent: true}}})
	if err != nil || out != "a" {
		t.Fatalf("Render = %q, %v", out, err)
	}
	_, err = tmpl.Render(RenderInput{Messages: []Message{{Role: "user", Content: "a", HasContent: true}, {Role: "tool", Content: "r", HasContent: true}}})
	var re *RaiseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RaiseError", err, err)
	}
	if want := `Tool role "tool" is not supported!`; err.Error() != want || re.Message != want {
		t.Fatalf("error = %q, want %q", err.Error(), want)
	}
}

func TestRenderOtherErrorsAndPanics(t *testing.T) {
	// The library panics on selectattr with a single argument; Render must
	// turn that into an error, not crash the server.
	tmpl, err := ParseTemplate(`{{ messages | selectattr('name') | list | length }}`, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(RenderInput{Messages: []Message{{Role: "user", Content: "x", HasContent: true}}}); err == nil {
		t.Fatal("want an error")
	} else if errors.As(err, new(*RaiseError)) {
		t.Fatalf("a library failure must not be a *RaiseError: %v", err)
	}
	// Invalid tool JSON is an error.
	tmpl, err = ParseTemplate(`{{ tools | length }}`, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(RenderInput{Tools: []json.RawMessage{json.RawMessage(`{"type":`)}}); err == nil {
		t.Fatal("want an error for invalid tool JSON")
	}
}

func TestRenderVariables(t *testing.T) {
	tmpl, err := ParseTemplate(`{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|{{ enable_thinking }}|{{ messages[0].content is none }}|{{ 'tool_calls' in messages[0] }}|{{ messages[0].tool_calls[0].function.arguments | tojson }}|{{ messages[0].tool_calls[1].function.arguments | tojson }}|{{ messages[0].tool_calls[2].function.arguments }}|{{ custom | tojson }}|{{ messages[1] | tojson }}`,
		TemplateOptions{BOSToken: "<s>", EOSToken: "</s>"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(RenderInput{
		Messages: []Message{
			{Role: "assistant", ToolCalls: []ToolCall{
				{ID: "1", Name: "f", Arguments: `{"b": 1, "a": [true, null, 1.0]}`},
				{ID: "2", Name: "g", Arguments: ""},
				{ID: "3", Name: "h", Arguments: "[1, 2]"},
			}},
			{Role: "user", Content: "x", HasContent: true, Name: "n", ReasoningContent: "r"},
		},
		AddGenerationPrompt: true,
		Extra: map[string]any{
			"enable_thinking": false,
			"custom":          json.RawMessage(`{"z": 1, "a": {"y": "é"}}`),
			"messages":        "ignored",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `<s>|</s>|True|True|True|False|True|True|{"b": 1, "a": [true, null, 1.0]}|{}|[1, 2]|{"z": 1, "a": {"y": "é"}}|{"role": "user", "content": "x", "name": "n", "reasoning_content": "r"}`
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestRenderPlain(t *testing.T) {
	for _, tc := range []struct {
		msgs []Message
		want string
	}{
		{nil, ""},
		{[]Message{{Role: "user", Content: "Once upon a time", HasContent: true}}, "Once upon a time"},
		{[]Message{{Role: "user", Content: "line one\n", HasContent: true}}, "line one\n"},
		{[]Message{
			{Role: "system", Content: "You are terse.", HasContent: true},
			{Role: "user", Content: "Hi", HasContent: true},
			{Role: "assistant", HasContent: false, ToolCalls: []ToolCall{{ID: "x", Name: "f", Arguments: "{}"}}},
			{Role: "tool", Content: "42", HasContent: true},
		}, "You are terse.\nHi\n42"},
		// A reply continues the text it was asked for, so the next turn's
		// prompt begins with the previous prompt and reply as they were.
		{[]Message{
			{Role: "user", Content: "Once upon a time", HasContent: true},
			{Role: "assistant", Content: ", there was a cat.", HasContent: true},
			{Role: "user", Content: "What next?", HasContent: true},
		}, "Once upon a time, there was a cat.\nWhat next?"},
	} {
		if got := RenderPlain(tc.msgs); got != tc.want {
			t.Errorf("RenderPlain = %q, want %q", got, tc.want)
		}
	}
}

func TestRewriteSource(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{{ x | tojson }}`, `{{ __asi1d_tojson(x) }}`},
		{`{{- t|tojson(indent=4) -}}`, `{{- __asi1d_tojson(t, indent=4) -}}`},
		{`{{ a.b[0]['c'].d() | tojson() }}`, `{{ __asi1d_tojson(a.b[0]['c'].d()) }}`},
		{`{{ 'x' + y | tojson }}`, `{{ 'x' + __asi1d_tojson(y) }}`},
		{`{{ x | map(attribute='a') | list | tojson(separators=(',', ':')) }}`, `{{ __asi1d_tojson(x | map(attribute='a') | list, separators=(',', ':')) }}`},
		{`{% set out = tool_call.function|tojson %}`, `{% set out = __asi1d_tojson(tool_call.function) %}`},
		{`{{ (x | tojson) | tojson }}`, `{{ __asi1d_tojson((__asi1d_tojson(x))) }}`},
		{`{{ "a|tojson" | tojson }}`, `{{ __asi1d_tojson("a|tojson") }}`},
		{`{{ {"k": [1, 2]} | tojson }}`, `{{ __asi1d_tojson({"k": [1, 2]}) }}`},
		{`{{ [1, 2] | tojson }}`, `{{ __asi1d_tojson([1, 2]) }}`},
		{`{{ 1.5 | tojson }}`, `{{ __asi1d_tojson(1.5) }}`},
		{`{{ not x | tojson }}`, `{{ not __asi1d_tojson(x) }}`},
		{`text | tojson {# x | tojson #}`, `text | tojson {# x | tojson #}`},
		{`{{ x | tojsonish }}`, `{{ x | tojsonish }}`},
		{`{{ | tojson }}`, `{{ | tojson }}`},
		{`{{ x | tojson`, `{{ x | tojson`},
		{`{%- for key, val in tool.items() if key != "return" %}`, `{%- for key, val in tool.items() if val[0] != "return" %}`},
		{`{% for k, v in d | items if v.k and k in ks and f(k=v) recursive %}`, `{% for k, v in d | items if v[1].k and v[0] in ks and f(k=v[1]) recursive %}`},
		{`{% for k, v in d.items() if 'k' != k %}{{ k }}{% endfor %}`, `{% for k, v in d.items() if 'k' != v[0] %}{{ k }}{% endfor %}`},
		{`{% for m in messages if m.role != 'system' %}`, `{% for m in messages if m.role != 'system' %}`},
		{`{% for k, v in d.items() %}`, `{% for k, v in d.items() %}`},
		{`a{{ x|tojson }}b{% if y %}{{ y|tojson }}{% endif %}c`, `a{{ __asi1d_tojson(x) }}b{% if y %}{{ __asi1d_tojson(y) }}{% endif %}c`},
	} {
		if got := rewriteTags(tc.in); got != tc.want {
			t.Errorf("rewriteTags(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestPyFloatJSON(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 2.5: "2.5", -0.0001: "-0.0001", 0.00001: "1e-05", 1e16: "1e+16", 1e15: "1000000000000000.0",
		123456789.125: "123456789.125", 0.1: "0.1", 1.5e300: "1.5e+300", 12345678901234567890: "1.2345678901234567e+19",
	} {
		if got := pyFloatJSON(f); got != want {
			t.Errorf("pyFloatJSON(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestStrftime(t *testing.T) {
	ts := time.Date(2024, 1, 7, 0, 5, 9, 123456000, time.UTC) // a Sunday
	for format, want := range map[string]string{
		"%d %b %Y":          "07 Jan 2024",
		"%Y-%m-%d":          "2024-01-07",
		"%-d %B, %-I %p":    "7 January, 12 AM",
		"%a %A %w %u %j":    "Sun Sunday 0 7 007",
		"%H:%M:%S.%f":       "00:05:09.123456",
		"%U %W %V %G":       "01 01 01 2024",
		"%e|%k|%l|%y|%C|%%": " 7| 0|12|24|20|%",
		"%c":                "Sun Jan  7 00:05:09 2024",
		"%z%Z%Q":            "%Q",
	} {
		if got := strftime(ts, format); got != want {
			t.Errorf("strftime(%q) = %q, want %q", format, got, want)
		}
	}
	if got, want := strftime(time.Date(2023, 1, 1, 13, 0, 0, 0, time.UTC), "%U %W %V %G %g %I%p"), "01 00 52 2022 22 01PM"; got != want {
		t.Errorf("strftime = %q, want %q", got, want)
	}
}

func TestRenderConcurrent(t *testing.T) {
	tmpl, err := ParseTemplate(tmplQwen3, TemplateOptions{EOSToken: "<|im_end|>"})
	if err != nil {
		t.Fatal(err)
	}
	in := benchQwenInput()
	want, err := tmpl.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				got, err := tmpl.Render(in)
				if err != nil || got != want {
					t.Errorf("concurrent Render differs: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// benchQwenInput is a 10-message chat: system, four user/assistant turns
// with reasoning in history, and a final user message, plus two tools.
func benchQwenInput() RenderInput {
	msgs := []Message{{Role: "system", Content: "You are a helpful assistant.", HasContent: true}}
	for i := 0; i < 4; i++ {
		msgs = append(msgs,
			Message{Role: "user", Content: "Question number " + strconv.Itoa(i) + ": what is the capital of France, and why?", HasContent: true},
			Message{Role: "assistant", Content: "<think>\nThe user asks a geography question.\n</think>\n\nThe capital of France is Paris.", HasContent: true},
		)
	}
	msgs = append(msgs, Message{Role: "user", Content: "Thanks! One more: and of Italy?", HasContent: true})
	tools := []json.RawMessage{
		json.RawMessage(`{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`),
		json.RawMessage(`{"type":"function","function":{"name":"web_search","description":"Search the web","parameters":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}}}`),
	}
	return RenderInput{Messages: msgs, Tools: tools, AddGenerationPrompt: true}
}

func BenchmarkRenderQwen3TenMessages(b *testing.B) {
	tmpl, err := ParseTemplate(tmplQwen3, TemplateOptions{EOSToken: "<|im_end|>"})
	if err != nil {
		b.Fatal(err)
	}
	in := benchQwenInput()
	if len(in.Messages) != 10 {
		b.Fatalf("%d messages", len(in.Messages))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tmpl, err := ParseTemplate(`{{ x | tojson }}|{{ x.s }}|{{ x.i is integer }}|{{ x.f is float }}|{{ x.big is float }}`, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(RenderInput{Extra: map[string]any{"x": json.RawMessage(
		` { "b" : 1, "a" : [ true , false , null , -0 , 1.50 , 2E3 , {} , [ ] ] , "s" : "q\"\\\n\u00e9\ud83d\ude00/", "b" : 2, "i": -42, "f": 1e2, "big": 123456789012345678901 } `)}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b": 2, "a": [true, false, null, 0, 1.5, 2000.0, {}, []], "s": "q\"\\\né😀/", "i": -42, "f": 100.0, "big": 1.2345678901234568e+20}|q"\` + "\n" + `é😀/|True|True|True`
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	for _, bad := range []string{`{"a":}`, `{"a":1} x`, ``, `[1,]`} {
		if _, err := decodeJSON([]byte(bad)); err == nil {
			t.Errorf("decodeJSON(%q) succeeded", bad)
		}
	}
}

// TestDecodeJSONStrings: invalid UTF-8 in a string becomes U+FFFD whether
// the string has escapes or not (encoding/json's rule, as for every other
// string of a request), and nesting deeper than encoding/json's limit is an
// error, not a deep recursion.
func TestDecodeJSONStrings(t *testing.T) {
	v, err := decodeJSON([]byte("{\"a\xffb\": [\"c\xffd\", \"e\\n\xff\"]}"))
	if err != nil {
		t.Fatal(err)
	}
	d := v.AsDict()
	val, _ := d.Get("a\ufffdb")
	if len(d.Keys) != 1 || d.Keys[0] != "a\ufffdb" || val.AsList().Len() != 2 ||
		val.AsList().Get(0).AsString() != "c\ufffdd" || val.AsList().Get(1).AsString() != "e\n\ufffd" {
		t.Errorf("got keys %q, value %s", d.Keys, val.String())
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	if _, err := decodeJSON([]byte(deep)); err == nil {
		t.Error("decodeJSON accepted 10001 nested arrays")
	}
	if _, err := decodeJSON([]byte(deep[1 : len(deep)-1])); err != nil {
		t.Errorf("10000 nested arrays: %v", err)
	}
}

func TestRenderExtraGoValues(t *testing.T) {
	tmpl, err := ParseTemplate(`{{ a }}|{{ b }}|{{ c }}|{{ d | tojson }}|{{ e is none }}|{{ f | tojson }}|{{ g | tojson }}`, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(RenderInput{Extra: map[string]any{
		"a": int32(7), "b": uint8(3), "c": "s", "d": float32(0.5), "e": nil,
		"f": []any{1, "x", true}, "g": map[string]any{"z": 1, "a": 2},
	}})
	if want := `7|3|s|0.5|True|[1, "x", true]|{"a": 2, "z": 1}`; err != nil || out != want {
		t.Fatalf("Render = %q, %v; want %q", out, err, want)
	}
	if _, err := tmpl.Render(RenderInput{Extra: map[string]any{"a": struct{}{}}}); err == nil {
		t.Fatal("want an error for an unsupported Extra type")
	}
}

func TestPrepareSource(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// CRLF and CR become LF; one trailing newline goes.
		{"a\r\nb\rc\n\n", "a\nb\nc\n"},
		// Adjacent tags keep the text before them.
		{"A: {{ x }}{%- if y -%}{%- endif -%} t", `A: {{ x }}{% if y %}{% endif %}t`},
		// Leading newlines and line indentation become expressions.
		{"{{ a }}\n\n  x\n  {{ b }}", `{{ a }}{{ "\n\n" }}  x` + "\n" + `{{ "  " }}{{ b }}`},
		{"\t{{ a }}", `{{ "\t" }}{{ a }}`},
		// A text ending in "{" cannot merge with the next tag.
		{"{{ k }}:{\n  {%- if x %}", `{{ k }}:{{ "{" }}{% if x %}`},
		// Comments go, with their whitespace effects.
		{"a\n  {# c #}\nb", "a\nb"},
		// Raw blocks fall back to the library's handling.
		{"{% raw %}{{ x }}{% endraw %}\n", "{% raw %}{{ x }}{% endraw %}"},
	} {
		if got := prepareSource(tc.in); got != tc.want {
			t.Errorf("prepareSource(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
