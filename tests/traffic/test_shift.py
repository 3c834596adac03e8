"""Traffic shares → HAProxy weights, and bad `--to` / `--shift` values as input errors."""

from __future__ import annotations

import pytest

from llmctl.errors import InputError
from llmctl.traffic.config import Server
from llmctl.traffic.shift import parse_shares, parse_split, weights_for
from llmctl.traffic.state import Routes


def test_named_share_and_the_rest():
    assert parse_shares(["green=10%"], ["blue", "green"]) == {"green": 10, "blue": 90}
    assert parse_shares(["blue=25,green=75%"], ["blue", "green"]) == {"blue": 25, "green": 75}
    assert parse_split("blue=90%,green=10%") == {"blue": 90, "green": 10}


def test_weights_spread_a_share_over_a_colours_servers():
    routes = Routes(backend="be", servers=[Server("blue-1", "127.0.0.1", 1), Server("blue-2", "127.0.0.1", 2),
                                           Server("green-1", "127.0.0.1", 3)])
    w = weights_for(routes, {"blue": 50, "green": 50})
    assert w == {"blue-1": 50, "blue-2": 50, "green-1": 100}
    assert weights_for(routes, {"blue": 0, "green": 100})["blue-1"] == 0


@pytest.mark.parametrize(("values", "needle"), [
    (["green"], "COLOUR=PERCENT"),
    (["red=10%"], "no colour 'red'"),
    (["green=120%"], "more than 100%"),
    (["green=60%", "blue=60%"], "more than 100%"),
    (["green=60%", "blue=30%"], "not 100%"),
])
def test_bad_shares(values, needle):
    with pytest.raises(InputError, match=needle):
        parse_shares(values, ["blue", "green"])


def test_cli_without_a_deployment_says_so(tmp_path):
    from support.cli import run_llmctl

    spec = tmp_path / "llmctl.yaml"
    spec.write_text("name: x\nmodel: qwen2.5:0.5b\n")
    r = run_llmctl("traffic", str(spec), "--to", "green=10%")
    assert r.code == 1 and "no proxy is running" in r.stderr and "Traceback" not in r.stderr
