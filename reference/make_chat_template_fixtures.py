#!/usr/bin/env python3
"""Writes tests/data/chat/: real models' chat templates and their renderings by transformers.

The templates are the ones llama.cpp keeps in vendor/llama.cpp/models/templates/ of the PyPI sdist
llama-cpp-python==0.3.36 (SHA-256 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e):
    ~/.cache/sentinel/venv/bin/python -m pip download --no-deps --no-binary :all: \
        llama-cpp-python==0.3.36 -d /tmp/sdist
    sha256sum /tmp/sdist/llama_cpp_python-0.3.36.tar.gz && tar -xzf /tmp/sdist/*.tar.gz -C /tmp/sdist
(~/.cache/sentinel/peers/llama.cpp is the same tree, unpacked for bench/peers.) Regenerate (seconds):
    ~/.cache/sentinel/venv/bin/python reference/make_chat_template_fixtures.py \
        --templates ~/.cache/sentinel/peers/llama.cpp/models/templates --out tests/data/chat

Files written:
  templates/<name>.jinja   the templates of TEMPLATES below, copied byte for byte
  constructs.json          CONSTRUCTS below: small templates, one Jinja construct each (and the
                           errors transformers raises), with what transformers' environment renders
  expected.json            per template, the bos/eos text given and, per case (a conversation,
                           add_generation_prompt, extra kwargs, tools or not), the text that
                           transformers' render_jinja_template returns, or the error it raises
The clock that strftime_now() reads is frozen at FIXED_NOW, which the C++ test injects too.
Not a test: tests/unit/base/test_chat_parity.cpp reads these files; this script is their only writer.
"""
import argparse
import datetime as dt
import json
import os
import shutil

import transformers
from transformers.utils import chat_template_utils

FIXED_NOW = dt.datetime(2025, 3, 14, 9, 26, 53)

# name -> (bos_token, eos_token) as the model's tokenizer gives them; None: the tokenizer has none,
# so transformers does not pass the variable and the template sees it undefined.
LLAMA3 = ("<|begin_of_text|>", "<|eot_id|>")
DEEPSEEK = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>")
QWEN = (None, "<|im_end|>")
MISTRAL = ("<s>", "</s>")
TEMPLATES = {
    "meta-llama-Llama-3.1-8B-Instruct": LLAMA3,
    "meta-llama-Llama-3.2-3B-Instruct": LLAMA3,
    "meta-llama-Llama-3.3-70B-Instruct": LLAMA3,
    "Qwen-Qwen2.5-7B-Instruct": QWEN,
    "Qwen-QwQ-32B": QWEN,
    "Qwen-Qwen3-0.6B": QWEN,
    "Qwen3-Coder": QWEN,
    "Qwen3.5-4B": QWEN,
    "mistralai-Mistral-Nemo-Instruct-2407": MISTRAL,
    "Mistral-Small-3.2-24B-Instruct-2506": MISTRAL,
    "mistralai-Ministral-3-14B-Reasoning-2512": MISTRAL,
    "unsloth-mistral-Devstral-Small-2507": MISTRAL,
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "google-gemma-4-31B-it": ("<bos>", "<eos>"),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": DEEPSEEK,
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": DEEPSEEK,
    "deepseek-ai-DeepSeek-V3.1": DEEPSEEK,
    "llama-cpp-deepseek-r1": DEEPSEEK,
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "HuggingFaceTB-SmolLM3-3B": (None, "<|im_end|>"),
    "ibm-granite-granite-3.3-2B-Instruct": ("<|end_of_text|>", "<|end_of_text|>"),
    "ibm-granite-granite-4.0": ("<|end_of_text|>", "<|end_of_text|>"),
    "openai-gpt-oss-120b": ("<|startoftext|>", "<|return|>"),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": ("<|begin_of_text|>", "<|im_end|>"),
    "fireworks-ai-llama-3-firefunction-v2": LLAMA3,
    "meetkai-functionary-medium-v3.1": LLAMA3,
    "meetkai-functionary-medium-v3.2": LLAMA3,
    "CohereForAI-c4ai-command-r-plus-tool_use": ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use": ("<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "GLM-4.6": (None, "<|endoftext|>"),
    "moonshotai-Kimi-K2": ("[BOS]", "[EOS]"),
    "MiniMax-M2": ("]~!b[", "[e~["),
    "NVIDIA-Nemotron-Nano-v2": ("<SPECIAL_10>", "<SPECIAL_12>"),
    "LFM2-8B-A1B": ("<|startoftext|>", "<|im_end|>"),
    "Apertus-8B-Instruct": ("<s>", "<|assistant_end|>"),
    "ByteDance-Seed-OSS": ("<seed:bos>", "<seed:eos>"),
    "llama-cpp-rwkv-world": (None, "\n\n"),
}

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "system_user": [SYSTEM, {"role": "user", "content": "Hello!"}],
    "user_only": [{"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [SYSTEM, {"role": "user", "content": "Hi"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "Tell me a joke."}],
    "alternating": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye."}],
    "whitespace_unicode": [{"role": "user", "content": "  Grüße, 世界! 👋 «ça» \t\n\n  "},
                           {"role": "assistant", "content": "\n ünïcödé ✓ \"quoted\" \\ back\n"},
                           {"role": "user", "content": "日本語\r\n\u3000end "}],
    "thinking_history": [{"role": "user", "content": "What is 1+1?"},
                         {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n\n2"},
                         {"role": "user", "content": "And 2+2?"}],
}

# Tool use, for templates that mention tools: the OpenAI-style schema and messages transformers
# documents (arguments as a dict). These render through jinja::Template with the JSON as is.
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]
TOOL_CONVERSATIONS = {
    "tools_offered": [SYSTEM, {"role": "user", "content": "What's the weather in Paris?"}],
    "tool_call": [{"role": "user", "content": "What's the weather in Paris?"},
                  {"role": "assistant", "content": "", "tool_calls": [{
                      "id": "call_1", "type": "function",
                      "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
                  {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
                   "content": "{\"temperature\": 18.5, \"sky\": \"clear\"}"}],
}


# Small templates, one construct each, rendered by transformers' Jinja environment: the
# interpreter's unit fixture (tests/unit/base/test_jinja.cpp). (template, variables) pairs.
M = {"messages": [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi <b>&</b>"},
                  {"role": "assistant", "content": "Hello"}]}
CONSTRUCTS = [
    # output, literals, Python str() of values
    ("{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1e16 }} {{ 0.00001 }} {{ 2.0 }} {{ 10/3 }} {{ 0.1+0.2 }}", {}),
    ("{{ none }} {{ None }} {{ true }} {{ False }} {{ 'it''s' }}", {}),
    ("{{ [1, 'a', none, true, 1.5, ('t',), {'k': [2]}] }}", {}),
    ("{{ \"it's\" }}|{{ [\"it's\", 'a\"b', 'x\\ny', 'tab\\t', 'é ✓ \\x01'] }}", {}),
    ("{{ (1, 2) }} {{ () }} {{ (1,) }} {{ {} }} {{ [] }}", {}),
    ("{{ 'a' 'b' }} {{ 'x\\d\\n\\u00e9\\x41\\101' }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1_0.5_0 }}", {}),
    ("{{ x }}|{{ x is defined }}|{{ d.missing }}|{{ d['missing'] }}|{{ l[10] }}|{{ d.missing is defined }}", {"d": {"a": 1}, "l": [1]}),
    # operators
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }}", {}),
    ("{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 / 4 }} {{ 2 ** -1 }} {{ true + 1 }} {{ 3 - true }}", {}),
    ("{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none ~ x }} {{ 'ab' * 3 }} {{ 2 * 'ab' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ (1,) + (2,) }}", {}),
    ("{{ 1 == 1.0 }} {{ 'a' == 1 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ none == none }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2.0 }} {{ 1 != 2 }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not 1 in [1] }} {{ 'a' in x }}", {}),
    ("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or none }} {{ '' and 1 }} {{ not '' }} {{ not [] }} {{ [] or {} }}", {}),
    ("{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }}|{{ 'only' if false }}|{{ 'a' if 0 else 'b' if 0 else 'c' }}", {}),
    ("{{ 5 is divisibleby 3 }} {{ 6 is divisibleby(3) }} {{ x is sameas none }} {{ none is sameas none }}", {"x": None}),
    ("{{ -1|abs }} {{ -(1) }} {{ - 1.5 }} {{ +3 }}", {}),
    # subscripts, attributes, slices
    ("{{ d.a }} {{ d['a'] }} {{ d['items'] }} {{ l[0] }} {{ l[-1] }} {{ l.0 }} {{ 'abc'[1] }} {{ 'héllo'[-1] }}", {"d": {"a": 1, "items": 2}, "l": [1, 2]}),
    ("{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[5:] }} {{ l[1:3] }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }}", {"l": [1, 2, 3, 4]}),
    ("{{ t[1:] }} {{ d.get('a') }} {{ d.get('b') }} {{ d.get('b', 3) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", {"t": [1, 2], "d": {"a": 1}}),
    # str methods
    ("[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.strip(' a') }}][{{ 'xxhixx'.strip('x') }}]", {"s": "  a b \n"}),
    ("{{ 'a,b,,c'.split(',') }} {{ '  a b  '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ ' a  b '.split(none, 1) }}", {}),
    ("{{ 'Ab'.upper() }} {{ 'Ab'.lower() }} {{ 'hello wORLD'.title() }} {{ 'hELLO'.capitalize() }} {{ 'straße'.upper() }} {{ 'ΣΑΣ'.lower() }}", {}),
    ("{{ 'abc'.startswith('a') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'ab'.replace('', '-') }}", {}),
    ("{{ 'abcb'.find('b') }} {{ 'abcb'.rfind('b') }} {{ 'abcb'.count('b') }} {{ ', '.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("{{ '{} and {}'.format(1, 'x') }} {{ '{0}{0}{1}'.format('a', 'b') }} {{ '{n}!'.format(n=3) }} {{ '{{x}}'.format() }}", {}),
    ("{{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }} {{ 'xab'.removeprefix('x') }}", {}),
    # filters
    ("[{{ s|trim }}][{{ s|trim('x ') }}][{{ s|length }}][{{ s|upper }}][{{ s|lower }}][{{ s|capitalize }}][{{ s|title }}]", {"s": " xhello World-foo (bar)x "}),
    ("{{ [1, 2, 3]|join(', ') }} {{ [1, 2]|join }} {{ l|join('|', attribute='n') }} {{ l|map(attribute='n')|list }} {{ l|map(attribute='m', default=0)|list }}", {"l": [{"n": "a"}, {"n": "b"}]}),
    ("{{ x|default('d') }} {{ none|default('d') }} {{ ''|default('d', true) }} {{ 0|d('z', boolean=true) }} {{ 'v'|default('d') }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [3, 1]|sort(reverse=true) }} {{ l|sort(attribute='n')|map(attribute='n')|list }}", {"l": [{"n": 2}, {"n": 1}]}),
    ("{{ [1, 2, 2, 'a', 'A']|unique|list }} {{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ []|first }}|{{ 'abc'|first }} {{ 'abc'|list }}", {}),
    ("{{ l|selectattr('a')|list }} {{ l|rejectattr('a')|list }} {{ l|selectattr('a', 'equalto', 2)|list }} {{ l|selectattr('b', 'defined')|list }}", {"l": [{"a": 1}, {"a": 0, "b": 1}, {"a": 2}]}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }} {{ [0, 1, '']|select|list }} {{ ['a', 'b']|map('upper')|list }}", {}),
    ("{{ {'b': 1, 'a': 2}|tojson }} {{ [1, 'é\"\\\\', none, true, 1.0, {'k': []}]|tojson }} {{ 'x<y'|tojson }}", {}),
    ("{{ d|tojson(indent=2) }}|{{ d|tojson(indent=0) }}|{{ [1, [2, {}]]|tojson(indent=4) }}|{{ d|tojson(separators=(',', ':')) }}", {"d": {"a": [1, {"b": None}], "c": "ü"}}),
    ("{{ d|tojson(sort_keys=true) }} {{ d|tojson(ensure_ascii=true) }} {{ 'tab\\t\\x01\\x7f👋'|tojson }}", {"d": {"z": "😀", "a": 1}}),
    ("{{ d|items|list }} {{ x|items|list }} {{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }}", {"d": {"b": 2, "A": 3, "a": 1}}),
    ("{{ '42'|int + 1 }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '4.7'|int }} {{ 3.9|int }} {{ '0x1A'|int(0, 16) }} {{ ' 12 '|int }} {{ '3.5'|float }} {{ 'a'|float }}", {}),
    ("{{ 2.5|round }} {{ 3.5|round }} {{ 2.567|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 3|string ~ 4 }}", {}),
    ("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}", {}),
    ("{{ 'aXbX'|replace('X', '-') }} {{ 'aXbX'|replace('X', '-', 1) }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }} {{ [1, 2, 3]|sum }} {{ [1, 5, 3]|max }} {{ ['b', 'A']|min }}", {}),
    ("{{ 'x'|center(5) }}| {{ '<a>'|e }} {{ '<a>'|escape }} {{ '<a>'|safe }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ '%s=%d'|format('x', 3) }}", {}),
    ("{{ 'Use '|safe + '<b>' }} {{ '<b>' + ' x'|safe }} {{ ('a'|safe) ~ '<' }} {{ ('%s'|safe) % '<' }} {{ '<' ~ ('&'|safe) }}", {}),
    # generators (map/select/... return generators in jinja2)
    ("{{ ([]|select) is iterable }} {{ 'yes' if []|select else 'no' }} {{ [1]|map('string')|join(',') }}", {}),
    ("{% set g = [1, 2]|map('string') %}{% for x in g %}{{ x }}{% endfor %}|{% for x in g %}{{ x }}{% endfor %}|{{ ([1, 2]|select)|first }}", {}),
    # tests
    ("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 1 is number }} {{ true is number }} {{ 1.0 is float }} {{ 1 is integer }} {{ true is integer }}", {}),
    ("{{ true is boolean }} {{ 1 is boolean }} {{ false is false }} {{ 0 is false }} {{ true is true }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is mapping }}", {}),
    ("{{ 'a' is iterable }} {{ 1 is iterable }} {{ x is iterable }} {{ {} is sequence }} {{ 'a' is sequence }} {{ none is sequence }} {{ range is callable }} {{ 'a' is callable }}", {}),
    ("{{ 3 is odd }} {{ 3 is even }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 1 is in [1] }} {{ 1 is eq 1 }} {{ 1 is ne 1 }} {{ 1 is lt 2 }} {{ 2 is ge 2 }} {{ 'x' is not none }}", {}),
    ("{{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }} {{ 1 is gt(0) }} {{ 1 is greaterthan 2 }}", {}),
    # statements and scoping
    ("{% if false %}a{% elif none %}b{% elif 1 %}c{% else %}d{% endif %}{% if [] %}e{% else %}f{% endif %}", {}),
    ("{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ m.role }};{% endfor %}", M),
    ("{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m['role'] }}{{ loop.previtem is defined }}{{ loop.nextitem is defined }},{% endfor %}", M),
    ("{% for i in range(3) %}{{ i }}{{ loop.cycle('a', 'b') }}{% endfor %} {% for i in range(1, 8, 3) %}{{ i }}{% endfor %} {% for i in range(3, 0, -1) %}{{ i }}{% endfor %}", {}),
    ("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'x': 1} %}{{ k }}{% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}", {}),
    ("{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %} {% for x in [] %}a{% else %}empty{% endfor %} {% for x in y|default([]) %}{% endfor %}", {}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for i in [1, 2] %}{% for j in 'ab' %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("{% set x = 0 %}{% for i in [1, 2, 3] %}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}", {}),
    ("{% for i in [1, 2, 3] %}{% if i > 1 %}{{ y }}{% endif %}{% set y = i %}{% endfor %}[{{ y }}]", {}),
    ("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }} {% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}", {}),
    ("{% set ns = namespace(found=false, n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns }}", {}),
    ("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}{{ ns.c }} {% set d = dict(x=1, y='z') %}{{ d }} {{ dict(d, w=2) }}", {}),
    ("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}] {% set y | upper %}shout{% endset %}{{ y }}", {}),
    ("{% macro m(a, b=2, c='c') %}<{{ a }}{{ b }}{{ c }}{{ varargs }}{{ kwargs }}>{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, c=4) }}{{ m(1, 2, 3, 4, z=5) }}", {}),
    ("{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}{% set x = 2 %}{{ m() }} {% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}", {}),
    ("{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m('a') + 'b' }} {{ m is callable }} {{ m('q')|length }}", {}),
    ("{% filter upper %}shout {{ 'it' }}{% endfilter %} {% filter indent(2, true) %}a\nb{% endfilter %}", {}),
    ("{% with a = 1, b = 'x' %}{{ a }}{{ b }}{% endwith %}{{ a }}", {}),
    ("{% raw %}{{ not rendered }} {% if %}{% endraw %}|{%- raw -%}  x  {%- endraw -%}  |", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    ("{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %d %j %p %y') }}", {}),
    ("{{ raise_exception('custom failure') }}", {}),
    ("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}", M),
    # whitespace control: trim_blocks and lstrip_blocks as transformers sets them, and - / +
    ("  {% if true %}\n  x\n  {% endif %}\n  y {# c #}\n  {#- c2 #}\nz\n", {}),
    ("a {{- ' b ' -}} c\n{%+ if true %}d{% endif %}\n  {%+ if true %}e{% endif %}", {}),
    ("{% for i in [1, 2] %}\n    {{ i }}\n{% endfor %}\n", {}),
    ("{%- for i in [1, 2] -%}\n    {{ i }}\n{%- endfor -%}\n\n end", {}),
    ("line1\n  {# comment #}\nline2 {#- x -#}   line3\n\t{% if 1 %}\ttab\n{% endif %}", {}),
    ("x\r\ny\r{% if 1 %}\r\nz{% endif %}\n\n", {}),
    ("{{ 'a' }}\n{{ 'b' }}\n  {{- 'c' }}  \n", {}),
    ("\u3000 {% if 1 %}wide{% endif %}\n \t\n{% if 1 -%}\n\n   x{%- endif %}", {}),
    # errors transformers raises
    ("{{ x.y }}", {}), ("{{ x + 'a' }}", {}), ("{{ 1 + 'a' }}", {}), ("{{ 'a' + 1 }}", {}), ("{{ [1].append(2) }}", {}),
    ("{{ {'a': 1}.pop('a') }}", {}), ("{% for x in none %}{% endfor %}", {}), ("{{ 1 / 0 }}", {}), ("{{ 1 // 0 }}", {}),
    ("{{ none < 1 }}", {}), ("{{ x() }}", {}), ("{{ 'a'() }}", {}), ("{{ 1|length }}", {}), ("{{ ([1]|map('string'))|tojson }}", {}),
    ("{{ ([1]|select)|length }}", {}), ("{% set ns = 1 %}{% set ns.a = 2 %}", {}), ("{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("{{ range(200000)|length }}", {}), ("{{ 'abc'[::0] }}", {}), ("{% set a, b = [1, 2, 3] %}", {}), ("{{ 1|from_json }}", {}),
    ("{% if 1 %}{{ 1|from_json }}{% endif %}", {}), ("{% if 0 %}{{ 1|from_json }}{% endif %}ok", {}), ("{{ 1 is nosuchtest }}", {}),
    ("{% include 'x' %}", {}), ("{% for %}", {}), ("{% if 1 %}", {}), ("{{ 1 +  }}", {}), ("{{ (1 }}", {}), ("{{ 'abc }}", {}),
    ("{% endif %}", {}), ("{# unclosed", {}), ("{{ 1 }", {}), ("{% do x %}", {}),
]


def render(template, messages, add_generation_prompt, special, kwargs, tools=None):
    (rendered,), _ = chat_template_utils.render_jinja_template(
        conversations=[messages], tools=tools, chat_template=template, add_generation_prompt=add_generation_prompt,
        **special, **kwargs)
    return rendered


def record(case, render_it):
    try:
        case["rendered"] = render_it()
    except Exception as e:  # the template refuses the conversation: the C++ side must too
        case["error_type"] = type(e).__name__
        case["error"] = str(e)
    return case


def cases_for(template, special):
    variants = [{}]
    if "enable_thinking" in template:
        variants += [{"enable_thinking": True}, {"enable_thinking": False}]
    cases = []
    for kwargs in variants:
        for name, messages in CONVERSATIONS.items():
            if kwargs and name not in ("user_only", "thinking_history"):
                continue  # the kwargs only change the generation prompt and the history's thinking
            for add_generation_prompt in (True, False):
                case = {"conversation": name, "add_generation_prompt": add_generation_prompt, "kwargs": kwargs}
                cases.append(record(case, lambda: render(template, messages, add_generation_prompt, special, kwargs)))
    if "tools" in template:
        for name, messages in TOOL_CONVERSATIONS.items():
            case = {"conversation": name, "add_generation_prompt": True, "kwargs": {}, "tools": True}
            cases.append(record(case, lambda: render(template, messages, True, special, {}, tools=TOOLS)))
    return cases


class FrozenClock(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", default=os.path.expanduser("~/.cache/sentinel/peers/llama.cpp/models/templates"))
    parser.add_argument("--out", default="tests/data/chat")
    parser.add_argument("--all", action="store_true",
                        help="every template in --templates (default BOS/EOS <s> </s> where TEMPLATES has none); "
                             "for checking the interpreter beyond the committed set, not for tests/data")
    args = parser.parse_args()
    templates = dict(TEMPLATES)
    if args.all:
        for file in sorted(os.listdir(args.templates)):
            if file.endswith(".jinja"):
                templates.setdefault(file[:-len(".jinja")], MISTRAL)

    chat_template_utils.datetime = FrozenClock  # what the strftime_now global reads
    os.makedirs(os.path.join(args.out, "templates"), exist_ok=True)
    fixture = {
        "generator": f"reference/make_chat_template_fixtures.py (transformers {transformers.__version__})",
        "now": FIXED_NOW.isoformat(),
        "conversations": {**CONVERSATIONS, **TOOL_CONVERSATIONS},
        "tools": TOOLS,
        "templates": {},
    }
    for name, (bos, eos) in templates.items():
        source_path = os.path.join(args.templates, name + ".jinja")
        shutil.copyfile(source_path, os.path.join(args.out, "templates", name + ".jinja"))
        with open(source_path, encoding="utf-8") as f:
            template = f.read()
        special = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v is not None}
        cases = cases_for(template, special)
        fixture["templates"][name] = {**special, "cases": cases}
        n_error = sum("error" in c for c in cases)
        print(f"{name}: {len(cases)} cases, {n_error} raise")
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")

    constructs = []
    for template, variables in CONSTRUCTS:
        case = {"template": template, "variables": variables}
        constructs.append(record(case, lambda: chat_template_utils._compile_jinja_template(template).render(**variables)))
    with open(os.path.join(args.out, "constructs.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": fixture["generator"], "now": fixture["now"], "cases": constructs}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"constructs: {len(constructs)} templates, {sum('error' in c for c in constructs)} raise")


if __name__ == "__main__":
    main()
