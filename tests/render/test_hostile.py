"""Hostile values (quotes, newlines, $(...), %, {{ }}, #, unicode) in the name, model, image and environment
values: every target's output still passes its real validator and each value reads back exactly."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_plans import make_plan, make_spec
from render_tools import compose_config, kube_validate, systemd_verify, write_all as _write
from render_unquote import kube_expand, systemd_exec, systemd_unit, systemd_words, systemd_specifiers

from llmctl.errors import InputError
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions
from llmctl.typed import updated

NASTY = ['"', "'", "\\", "$", "$(id)", "${HOME}", "`id`", "%", "%n", "%%", "{{ x }}", "{%", "#", ";", "\n", "\r\n",
         "\t", "é", "😀", "\u2028", "\x1b", ":", "- ", "&&", "|", "*", "!", "[", "]", "{", "}", ",", "?", "@", "=",
         "\\n", "$$", "~", "'\"", "&", "<>", "\u00a0", "\ufeff"]
chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(chars, min_size=1, max_size=4)), max_size=8).map("".join)
# model and image are single command-line words: no white space, no leading '-' (rejected with InputError)
word = text.map(lambda s: "x" + re.sub(r"\s", "", s))
name = text.filter(lambda s: s.strip() != "")


def build(name: str, model: str, image: str, value: str):
    plan = make_plan(name=name, reference=model, hf_id=model, replicas=2)
    spec = make_spec(name=name, model=model, overrides={"image": image})
    service = build_service(plan, spec)
    return updated(service, env={**service.env, "LLMCTL_TEST_VALUE": value})


SETTINGS = settings(max_examples=int(__import__("os").environ.get("LLMCTL_HYPOTHESIS_EXAMPLES", "25")),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(name=name, model=word, image=word, value=text)
def test_compose_round_trip(tmp_path_factory, name, model, image, value):
    service = build(name, model, image, value)
    folder = tmp_path_factory.mktemp("compose")
    _write(folder, render_service(service, "compose").files)
    svc = compose_config(folder)["services"][service.slug]
    undo = lambda s: s.replace("$$", "$")  # noqa: E731 — compose's escape, left as-is by --no-interpolate
    assert [undo(a) for a in svc["entrypoint"]] == service.argv
    assert undo(svc["image"]) == image
    assert {k: undo(v) for k, v in svc["environment"].items()} == service.env
    assert undo(svc["labels"]["dev.llmctl.name"]) == name
    assert model in service.argv


@SETTINGS
@given(name=name, model=word, image=word, value=text)
def test_kubernetes_round_trip(tmp_path_factory, name, model, image, value):
    from ruamel.yaml import YAML

    service = build(name, model, image, value)
    folder = tmp_path_factory.mktemp("k8s")
    files = render_service(service, "kubernetes").files
    kube_validate(_write(folder, files))
    dep = YAML(typ="safe", pure=True).load(files["deployment.yaml"])
    assert dep["metadata"]["annotations"]["llmctl.dev/name"] == name
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image
    assert [kube_expand(a) for a in container["command"]] == service.argv
    plain = {e["name"]: kube_expand(e["value"]) for e in container["env"] if "value" in e}
    assert plain == service.env


@SETTINGS
@given(name=name, model=word, image=word, value=text)
def test_systemd_round_trip(sdroot, name, model, image, value):
    service = build(name, model, image, value)
    for runtime in ("docker", "native"):
        files = render_service(service, "systemd", RenderOptions(runtime=runtime)).files
        unit = files[f"{service.slug}-blue.service"]
        systemd_verify(sdroot, unit, f"{service.slug}-blue.service")
        keys = systemd_unit(unit)
        # no value added a directive: the keys are exactly those the template writes
        assert set(keys) <= ALLOWED_KEYS, set(keys) - ALLOWED_KEYS
        (start,) = keys["ExecStart"]
        argv = systemd_exec(start)
        env = {}
        for line in keys["Environment"]:
            (assignment,) = systemd_words(line)
            k, _, v = systemd_specifiers(assignment).partition("=")
            env[k] = v
        if runtime == "docker":
            assert argv[argv.index("--entrypoint") + 1] == service.argv[0]
            assert argv[argv.index("--entrypoint") + 2] == image
            assert argv[argv.index("--entrypoint") + 3:] == service.argv[1:]
            assert f"dev.llmctl.name={name}" in argv
            assert env == service.env
        else:
            from llmctl.targets.systemd.render import default_private_port, private_service

            # the colour unit listens on its private port behind the proxy unit
            inner = private_service(service, default_private_port(service.ports[0].host))
            assert argv == inner.native_argv
            assert env["LLMCTL_TEST_VALUE"] == value


ALLOWED_KEYS = {
    "Description", "User", "After", "Wants", "Requires", "StartLimitIntervalSec", "StartLimitBurst", "Type",
    "EnvironmentFile", "Environment", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "Restart",
    "RestartSec", "TimeoutStartSec", "TimeoutStopSec", "NoNewPrivileges", "PrivateTmp", "ProtectSystem",
    "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectClock", "ProtectHostname", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
    "SystemCallArchitectures", "DynamicUser", "StateDirectory", "WorkingDirectory", "CapabilityBoundingSet",
    "RestrictNamespaces", "RestrictAddressFamilies", "PrivateDevices", "UMask", "SupplementaryGroups", "WantedBy",
}


@pytest.mark.parametrize("bad", ["-rf", "--privileged", "a b", "a\nb", " "])
def test_model_that_would_be_an_option_or_split_is_refused(bad):
    with pytest.raises(InputError, match="model"):
        build_service(make_plan(reference=bad, hf_id=bad), make_spec())


@pytest.mark.parametrize("bad", ["-rf", "--privileged", "a b", "a\tb", "img\n:1"])
def test_image_that_would_be_an_option_or_split_is_refused(bad):
    with pytest.raises(InputError, match="overrides.image"):
        build_service(make_plan(), make_spec(overrides={"image": bad}))
