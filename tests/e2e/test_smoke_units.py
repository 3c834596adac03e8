"""Pure helpers of llmctl.smoke: URL normalisation, percentiles, model matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmctl.errors import InputError
from llmctl.smoke import model_listed, normalize_base_url, percentile


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("https://llm.example.test/team/v1", "https://llm.example.test/team"),
    ],
)
def test_normalize_base_url(url, base):
    assert normalize_base_url(url) == base


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host/", "http://", "http://h:99999"])
def test_bad_urls_are_input_errors(url):
    with pytest.raises(InputError, match="--url"):
        normalize_base_url(url)


def test_percentile_matches_linear_interpolation():
    assert percentile([], 95) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == pytest.approx(95)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_the_samples(xs, q):
    p = percentile(xs, q)
    assert min(xs) <= p <= max(xs)
    assert percentile(xs, 0) == min(xs) and percentile(xs, 100) == max(xs)


def test_model_listed_knows_ollamas_latest_tag():
    assert model_listed("llama3.2", ["llama3.2:latest"], "ollama")
    assert not model_listed("llama3.2", ["llama3.2:latest"], "openai")
    assert model_listed("tiny", ["tiny"], "openai")


def test_streamed_lines_split_across_reads_and_utf8_boundaries():
    from llmctl.smoke import _Deadline, _lines

    class Body:
        def iter_bytes(self):
            data = "data: héllo\r\ndata: [DONE]\n".encode()
            yield from (data[i:i + 3] for i in range(0, len(data), 3))  # cuts é in half

    assert list(_lines(Body(), _Deadline(30))) == ["data: héllo", "data: [DONE]"]


def test_a_server_that_never_finishes_a_line_cannot_outlast_the_deadline():
    import time

    from llmctl.smoke import _Deadline, _lines

    class Trickle:
        def iter_bytes(self):
            while True:  # one byte at a time, never a newline
                yield b"x"

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        list(_lines(Trickle(), _Deadline(0.3)))
    assert time.monotonic() - start < 5
