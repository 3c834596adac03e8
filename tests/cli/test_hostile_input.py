"""Hostile spec files: an alias bomb, a 5 MB comment, 100 MB of junk, deep nesting, NUL bytes,
invalid UTF-8. `llmctl plan` refuses each with exit 2 and a message naming the file — quickly and
in little memory. The bounds asserted here are generous hang guards (the machine may be busy); the
measured numbers are in `python -m benchmarks.hostile` and the README."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import hostile  # noqa: E402

HANG_GUARD_S = 20.0
RSS_LIMIT_MB = 200.0

EXPECTED = {
    "alias bomb (9 levels)": "billion laughs",
    "merge-key bomb": "billion laughs",
    "5 MB comment": "larger than 1,024 KiB",
    "100 MB of random bytes": "larger than 1,024 KiB",
    "nesting 100 000 deep": "nested more than 64 levels",
    "recursive alias": "nested more than 64 levels",
    "NUL byte": "NUL byte",
    "invalid UTF-8": "not UTF-8",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_hostile_spec_exits_2_fast_and_small(name: str, tmp_path: Path) -> None:
    path = hostile.make(name, tmp_path)
    code, seconds, rss_mb, err = hostile.run([sys.executable, "-m", "llmctl", "plan", str(path)],
                                             timeout=HANG_GUARD_S * 3)
    assert code == 2, err
    assert EXPECTED[name] in err, err
    assert str(path) in err  # the message names the file (and the line where there is one)
    assert "Traceback" not in err
    assert seconds < HANG_GUARD_S, f"{name}: {seconds:.1f}s"
    assert rss_mb < RSS_LIMIT_MB, f"{name}: {rss_mb:.0f} MB"


def test_the_line_of_a_nul_byte_and_of_bad_utf8_is_named(tmp_path: Path) -> None:
    line = hostile._base().splitlines().index(next(ln for ln in hostile._base().splitlines()
                                                     if ln.startswith("environment:"))) + 1
    for name in ("NUL byte", "invalid UTF-8"):
        path = hostile.make(name, tmp_path)
        _, _, _, err = hostile.run([sys.executable, "-m", "llmctl", "plan", str(path)], timeout=60)
        assert f"{path}:{line}:" in err, err


def test_many_comment_lines_still_plan(tmp_path: Path) -> None:
    """900 KB of comment lines (under the size limit) is a valid spec: it plans, and the loader is
    linear in the comments (the round-trip loader it replaced was quadratic)."""
    from llmctl.spec import load_spec_text
    from llmctl.yaml_lines import load_yaml  # the parser itself, not its cache

    small = hostile.comment_lines(90_000).decode()
    large = hostile.comment_lines(900_000).decode()
    t0 = time.process_time()
    load_yaml(small, "small.yaml")
    t_small = time.process_time() - t0
    t0 = time.process_time()
    load_yaml(large, "large.yaml")
    t_large = time.process_time() - t0
    assert load_spec_text(large, "large.yaml").environment == "production"
    assert t_large < 40 * max(t_small, 0.005), (t_small, t_large)  # 10x the text: linear, not 100x


def test_spec_size_limit_is_exact(tmp_path: Path) -> None:
    from llmctl.errors import InputError
    from llmctl.fileio import MAX_SPEC_BYTES
    from llmctl.spec import load_spec

    base = hostile._base()
    fits = tmp_path / "fits.yaml"
    fits.write_text(base + "#" * (MAX_SPEC_BYTES - len(base.encode()) - 1) + "\n")
    assert fits.stat().st_size == MAX_SPEC_BYTES
    assert load_spec(fits).name == "support-bot"
    over = tmp_path / "over.yaml"
    over.write_text(base + "#" * (MAX_SPEC_BYTES - len(base.encode())) + "\n")
    with pytest.raises(InputError, match="larger than"):
        load_spec(over)


def test_plan_file_limits(tmp_path: Path) -> None:
    """`render --plan FILE`: a saved plan gets the same treatment (size, nesting, encoding)."""
    from support.cli import run_llmctl

    spec = ROOT / "examples" / "chatbot.yaml"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    r = run_llmctl("render", str(spec), "--plan", str(deep), "--out", str(tmp_path / "out"), timeout=60)
    assert r.code == 2 and "nested too deeply" in r.stderr and "Traceback" not in r.output, r.output
    junk = tmp_path / "junk.json"
    hostile.write_junk(junk, 20)
    r = run_llmctl("render", str(spec), "--plan", str(junk), "--out", str(tmp_path / "out"), timeout=60)
    assert r.code == 2 and "larger than" in r.stderr, r.output
    assert not (tmp_path / "out").exists()


def test_a_spec_parsed_before_comes_from_the_cache(tmp_path: Path):
    """The second plan of the same spec text reads the parse from the cache (no YAML parser imported);
    an edited spec is parsed again; a spec with a YAML date (not plain JSON) is never cached; errors
    keep their file:line either way."""
    import json as _json
    import os
    import subprocess

    env = {**os.environ, "LLMCTL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    spec = tmp_path / "s.yaml"
    spec.write_text("name: c\nmodel: llama3.1:8b\nworkload:\n  concurrency: 2\n")
    probe = ("import sys; from llmctl.spec import load_spec; s = load_spec(sys.argv[1]); "
             "print(s.workload.concurrency, 'ruamel.yaml' in sys.modules)")

    def load() -> str:
        return subprocess.run([sys.executable, "-c", probe, str(spec)], capture_output=True, text=True, env=env,
                              timeout=60).stdout.strip()

    assert load() == "2 True"  # parsed
    assert load() == "2 False"  # from the cache
    spec.write_text(spec.read_text().replace("concurrency: 2", "concurrency: 3"))
    assert load() == "3 True"
    cached = sorted(_json.loads(p.read_text())["data"]["workload"]["concurrency"]
                    for p in (tmp_path / "cache" / "specs").glob("*.json"))
    assert cached == [2, 3]
    spec.write_text("name: c\nmodel: llama3.1:8b\nworkload:\n  concurrency: 3\n  prompt_tokens: 2024-01-01\n")
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "llmctl", "plan", str(spec)], capture_output=True, text=True, env=env,
                           timeout=60)
        assert r.returncode == 2 and f"{spec}:5" in r.stderr and "prompt_tokens" in r.stderr, r.stderr
