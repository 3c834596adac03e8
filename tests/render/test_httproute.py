"""Kubernetes blue/green with a gradual shift: colour-named objects and a Gateway API HTTPRoute with
weighted backendRefs, validated against the HTTPRoute CRD schema (schemas/, from gateway-api) and, for
the core objects, with kubernetes-validate."""

from __future__ import annotations

import pytest
from render_plans import case
from render_tools import kube_validate, write_all
from ruamel.yaml import YAML

from llmctl.errors import InputError
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions

load = YAML(typ="safe", pure=True).load


def test_colour_and_weighted_route_validate(tmp_path):
    service = build_service(*case("vllm-tp4-fp8-lora"))
    opts = RenderOptions(colour="green", shift={"blue": 90, "green": 10}, gateway="infra/public")
    files = render_service(service, "kubernetes", opts).files
    kube_validate(write_all(tmp_path, files))
    route = load(files["httproute.yaml"])["spec"]
    assert route["parentRefs"] == [{"name": "public", "namespace": "infra"}]
    refs = route["rules"][0]["backendRefs"]
    assert refs == [{"name": "chat-blue", "port": 9000, "weight": 90}, {"name": "chat-green", "port": 9000, "weight": 10}]
    dep = load(files["deployment.yaml"])
    assert dep["metadata"]["name"] == "chat-green"
    assert dep["spec"]["selector"]["matchLabels"]["llmctl.dev/color"] == "green"
    svc = load(files["service.yaml"])
    assert svc["metadata"]["name"] == "chat-green" and svc["spec"]["selector"]["llmctl.dev/color"] == "green"
    assert load(files["scaledobject.yaml"])["spec"]["scaleTargetRef"]["name"] == "chat-green"


def test_schema_rejects_a_bad_weight(tmp_path):
    """The hand-written schema is not a rubber stamp: a negative weight fails like the CRD would."""
    service = build_service(*case("vllm-1gpu"))
    files = render_service(service, "kubernetes", RenderOptions(shift={"blue": 100}, gateway="gw")).files
    files = {"httproute.yaml": files["httproute.yaml"].replace("weight: 100", "weight: -1")}
    with pytest.raises(AssertionError, match="httproute"):
        kube_validate(write_all(tmp_path, files))


@pytest.mark.parametrize(("opts", "needle"), [
    (RenderOptions(shift={"blue": 50, "green": 40}, gateway="gw"), "not 100%"),
    (RenderOptions(shift={"blue": 100}), "--gateway"),
    (RenderOptions(shift={"blue": 100}, gateway="Bad_Name"), "not a valid Gateway name"),
    (RenderOptions(colour="Green!"), "colour"),
])
def test_bad_shift_options_are_input_errors(opts, needle):
    with pytest.raises(InputError, match=needle):
        render_service(build_service(*case("vllm-1gpu")), "kubernetes", opts)
