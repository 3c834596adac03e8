"""The spec loader: valid specs load; bad ones name the field path and the line, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmctl.errors import InputError
from llmctl.spec import load_spec, load_spec_text
from support.cli import run_llmctl

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))

GOOD = """\
name: bot
model: llama3.1:8b
workload:
  concurrency: 4
  prompt_tokens: 100
  output_tokens: 50
hardware:
  - gpu: RTX 4090
    gpus: 1
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name and spec.model


def test_defaults_and_context() -> None:
    spec = load_spec_text(GOOD)
    assert spec.environment == "development"
    assert spec.workload.max_context == 150  # one request when context_length is not given
    assert spec.hardware[0].gpu_count == 1


def _error(text: str) -> str:
    with pytest.raises(InputError) as exc:
        load_spec_text(text, "s.yaml")
    assert exc.value.exit_code == 2
    return str(exc.value)


def test_unknown_key_suggests_the_right_one_with_its_line() -> None:
    msg = _error(GOOD.replace("  concurrency: 4", "  concurency: 4"))
    assert "s.yaml:4" in msg and "workload.concurency" in msg and "did you mean 'concurrency'" in msg


def test_wrong_type_names_field_and_line() -> None:
    msg = _error(GOOD.replace("prompt_tokens: 100", "prompt_tokens: lots"))
    assert "s.yaml:5" in msg and "workload.prompt_tokens" in msg


def test_bad_enum_in_a_list_item_points_at_the_item() -> None:
    msg = _error(GOOD + "needs: [lora, telepathy]\n")
    assert "needs.1" in msg and "s.yaml:10" in msg and "telepathy" in msg


def test_errors_after_a_bad_list_item_keep_their_own_numbers_and_lines() -> None:
    msg = _error(GOOD + "  - 5\n  - gpu: L4\n    gpus: -1\nneeds: [lora, telepathy]\nenvironment: prodution\n")
    assert "s.yaml:10: hardware.1: expected a mapping of keys" in msg
    assert "s.yaml:12: hardware.2.gpus" in msg
    assert "s.yaml:13: needs.1" in msg and "s.yaml:14: environment" in msg


def test_nested_hardware_error_has_the_node_line() -> None:
    msg = _error(GOOD.replace("    gpus: 1", "    gpus: -3"))
    assert "hardware.0.gpus" in msg and "s.yaml:9" in msg


def test_yaml_syntax_error_has_a_line() -> None:
    msg = _error("name: x\nmodel: [unclosed\nworkload: {}\n")
    assert "s.yaml:" in msg and "not valid YAML" in msg


def test_missing_required_field() -> None:
    msg = _error("name: x\n")
    assert "model" in msg and "required" in msg


def test_context_shorter_than_a_request_is_refused() -> None:
    msg = _error(GOOD.replace("  output_tokens: 50", "  output_tokens: 50\n  context_length: 100"))
    assert "context_length" in msg


def test_cli_bad_spec_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("model: llama3.1:8b", "modle: llama3.1:8b"))
    r = run_llmctl("plan", str(bad))
    assert r.code == 2
    assert "Traceback" not in r.output
    assert "did you mean 'model'" in r.stderr and f"{bad}:2" in r.stderr


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    r = run_llmctl("plan", str(tmp_path / "nope.yaml"))
    assert r.code == 2 and "not found" in r.stderr and "Traceback" not in r.output


# ---- property-based: random and mutated specs never escape as anything but InputError

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=12)
_keys = st.sampled_from(["name", "model", "workload", "environment", "needs", "hardware", "target", "overrides",
                         "endpoint", "adapters", "concurrency", "sla", "gpu", "gpus", "bogus"])


def _to_yaml(data) -> str:
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buf)
    return buf.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=8))
def test_random_specs_raise_only_input_errors(doc) -> None:
    try:
        load_spec_text(_to_yaml(doc), "fuzz.yaml")
    except InputError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(0, 40), st.text(max_size=6))
def test_mutated_text_raises_only_input_errors(pos: int, cut: int, insert: str) -> None:
    text = GOOD[:pos] + insert + GOOD[pos + cut:]
    try:
        load_spec_text(text, "fuzz.yaml")
    except InputError as exc:
        assert "fuzz.yaml" in str(exc) or "spec" in str(exc)
