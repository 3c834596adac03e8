"""The Modelfile grammar and the /api/show `parameters` text, as Ollama v0.32.15 reads them
(parser/parser.go ParseFile, api/types.go FormatParams, server/routes.go GetModelInfo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmctl.errors import InputError
from llmctl.migrate.modelfile import parse_modelfile, parse_show_parameters, render_modelfile

RECORDED = Path(__file__).parent / "recorded"


def test_every_command_and_typed_parameters():
    mf = parse_modelfile('''# a comment
FROM llama3.2:1b
parameter temperature 0.7
PARAMETER num_ctx 8192
PARAMETER stop <|eot_id|>
PARAMETER stop "<|end_header_id|>"
PARAMETER use_mmap false
SYSTEM You are helpful.
ADAPTER ./lora.gguf
LICENSE "MIT"
MESSAGE user Hi there
MESSAGE assistant Hello!
''')
    assert mf.from_ == "llama3.2:1b"
    assert mf.parameters() == {"temperature": 0.7, "num_ctx": 8192, "stop": ["<|eot_id|>", "<|end_header_id|>"],
                               "use_mmap": False}
    assert isinstance(mf.parameters()["num_ctx"], int)
    assert mf.system == "You are helpful."
    assert mf.adapters == ["./lora.gguf"]
    assert mf.license == ["MIT"]
    assert mf.messages == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]


def test_multi_line_strings_in_both_quotes():
    mf = parse_modelfile('FROM x\nTEMPLATE """{{ .System }}\nsays "hi"\n"""\nSYSTEM "line one\nline two"\n')
    assert mf.template == '{{ .System }}\nsays "hi"\n'
    assert mf.system == "line one\nline two"


def test_a_later_system_replaces_an_earlier_one():
    assert parse_modelfile("FROM x\nSYSTEM a\nSYSTEM b\n").system == "b"


@pytest.mark.parametrize("text, message, line", [
    ("PARAMETER temperature 0.7\n", "no FROM line", None),
    ("FROM x\nBOGUS thing\n", "command must be one of", 2),
    ("FROM x\n\nPARAMETER temprature 0.7\n", "unknown parameter 'temprature'", 3),
    ("FROM x\nPARAMETER num_ctx lots\n", "not a valid int", 2),
    ("FROM x\nMESSAGE robot hi\n", "message role must be one of", 2),
    ('FROM x\nSYSTEM """never closed\n', 'unterminated """ string', 2),
])
def test_errors_name_the_line(text, message, line):
    with pytest.raises(InputError) as exc:
        mf = parse_modelfile(text, "Modelfile")
        mf.parameters("Modelfile")
    assert message in str(exc.value)
    if line:
        assert f"Modelfile:{line}" in str(exc.value)


def test_recorded_show_parameters_read_back_typed():
    show = json.loads((RECORDED / "show" / "acme-bot_latest.json").read_text())
    params = parse_show_parameters(show["parameters"])
    assert params == {"num_ctx": 8192, "repeat_penalty": 1.1, "seed": 42, "temperature": 0.7, "top_p": 0.9,
                      "stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]}
    # the Modelfile /api/show prints carries the same settings
    mf = parse_modelfile(show["modelfile"], "/api/show modelfile")
    assert mf.parameters() == params
    assert mf.system == show["system"]
    assert mf.messages == show["messages"]
    assert "Respond in the format" in mf.template


def test_go_escapes_in_parameters():
    assert parse_show_parameters('stop                           "a\\nb\\"c\\u00e9"') == {"stop": ['a\nb"cé']}
    with pytest.raises(InputError, match="bad escape"):
        parse_show_parameters('stop "a\\qb"')


def test_rendered_modelfile_parses_back():
    text = render_modelfile("llama3.2:1b", {"temperature": 0.5, "stop": ["<|eot_id|>", " padded "]},
                            system="two\nlines", messages=[{"role": "user", "content": "hi"}])
    mf = parse_modelfile(text)
    assert mf.parameters() == {"temperature": 0.5, "stop": ["<|eot_id|>", " padded "]}
    assert mf.system == "two\nlines"
    assert mf.messages == [{"role": "user", "content": "hi"}]
