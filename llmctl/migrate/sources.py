"""What `--from SOURCE` names: a live Ollama URL, the local Ollama store, an llmctl spec whose plan
is Ollama, or a compose file / Kubernetes manifest that runs the `ollama/ollama` image.

A file source gives the server's environment (OLLAMA_* variables) and port; the models come from a
live server when one answers at the published port (or `--url`), else from the model names the
file itself carries (a spec's `model`, `ollama pull|run NAME` in a command, llmctl's model label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import InputError

# the server settings an inventory records (ollama/ollama envconfig/config.go, v0.32.15)
SERVER_ENV = ("OLLAMA_NUM_PARALLEL", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KEEP_ALIVE", "OLLAMA_KV_CACHE_TYPE",
              "OLLAMA_MAX_QUEUE", "OLLAMA_FLASH_ATTENTION", "OLLAMA_MAX_LOADED_MODELS", "OLLAMA_HOST")
OLLAMA_IMAGE = re.compile(r"^(docker\.io/)?(library/)?ollama/ollama(:[\w.\-]+)?(@sha256:[0-9a-f]{64})?$")
DEFAULT_PORT = 11434  # OLLAMA_HOST default 127.0.0.1:11434 (envconfig/config.go Host)
MAX_FILE = 4 << 20


@dataclass
class Source:
    kind: str  # url | spec | compose | kubernetes | store
    where: str
    url: str | None = None  # a live server to read
    url_given: bool = False  # named by --url (then it must answer)
    env: dict[str, str] = field(default_factory=dict)
    env_lines: dict[str, str] = field(default_factory=dict)  # variable -> file:line
    names: list[str] = field(default_factory=list)  # model names the file carries
    spec: Any = None  # the source spec (kind spec)
    plan: Any = None  # its plan
    store_dir: Path | None = None
    target: str | None = None
    notes: list[str] = field(default_factory=list)


def classify(source: str, url: str | None = None) -> Source:
    s = source.strip()
    if not s:
        raise InputError("--from is empty", hint="a URL (http://host:11434), `store`, a spec, compose file or manifest")
    if re.match(r"^https?://", s, re.I):
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?$", s):
            raise InputError(f"--from: {s!r} is not a server address (scheme://host[:port])", where="--from")
        return Source("url", s, url=s.rstrip("/"))
    if s in ("store", "ollama-store"):
        return Source("store", "the local Ollama store")
    path = Path(s).expanduser()
    if path.is_dir():
        if (path / "manifests").is_dir():
            return Source("store", str(path), store_dir=path)
        raise InputError(f"--from: {s} is a folder without manifests/ (not an Ollama models folder)", where="--from")
    if not path.exists():
        raise InputError(f"--from: {s} does not exist", where="--from",
                         hint="a URL (http://host:11434), `store`, a spec, a compose file or a Kubernetes manifest")
    from llmctl.fileio import read_text_input

    text = read_text_input(path, what="source", max_bytes=MAX_FILE)
    docs = _yaml_docs(text, s)
    first = docs[0][0] if docs else None
    if len(docs) == 1 and isinstance(first, dict) and "services" in first:
        src = _compose(first, docs[0][1], s)
    elif any(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d, _ in docs):
        src = _kubernetes(docs, s)
    elif len(docs) == 1 and isinstance(first, dict) and "model" in first and "name" in first:
        src = _spec(text, s)
    else:
        raise InputError("not a spec, compose file or Kubernetes manifest (no `model`, `services` or `kind`)",
                         where=f"{s}:1")
    if url:
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?$", url.strip(), re.I):
            raise InputError(f"--url: {url!r} is not a server address (scheme://host[:port])", where="--url")
        src.url, src.url_given = url.strip().rstrip("/"), True
    return src


def _yaml_docs(text: str, filename: str) -> list[tuple[Any, dict]]:
    from llmctl.yaml_lines import load_yaml

    out = []
    line0 = 0
    for chunk in re.split(r"(?m)^---[ \t]*$\n?", text):
        if chunk.strip() and not all(not ln.strip() or ln.lstrip().startswith("#") for ln in chunk.splitlines()):
            data, lines = load_yaml(chunk, filename)
            if data is not None:
                out.append((data, {k: v + line0 for k, v in lines.items()}))
        line0 += chunk.count("\n") + 1
    return out


def _line(lines: dict, *loc: Any) -> int:
    from llmctl.yaml_lines import line_of

    return line_of(lines, tuple(loc)) or 1


def _env_pairs(env: Any, where: str) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    if isinstance(env, list):
        out = {}
        for item in env:
            if isinstance(item, str):
                k, _, v = item.partition("=")
                out[k] = v
            elif isinstance(item, dict) and "name" in item:  # Kubernetes EnvVar
                if "value" in item:
                    out[str(item["name"])] = str(item["value"])
            else:
                raise InputError("environment entries must be KEY=VALUE or {name, value}", where=where)
        return out
    raise InputError("environment must be a mapping or a list", where=where)


def _names_in_command(words: Any) -> list[str]:
    text = " ".join(str(w) for w in words) if isinstance(words, list) else str(words or "")
    return re.findall(r"ollama\s+(?:pull|run)\s+([A-Za-z0-9][\w.\-/:]*)", text)


def _port_of_host(value: str | None) -> int:
    if value:
        m = re.search(r":(\d{1,5})$", value)
        if m:
            return int(m.group(1))
    return DEFAULT_PORT


def _compose(doc: dict, lines: dict, where: str) -> Source:
    services = doc.get("services")
    if not isinstance(services, dict):
        raise InputError("`services` must be a mapping", where=f"{where}:{_line(lines, 'services')}")
    found = [(n, s) for n, s in services.items() if isinstance(s, dict) and OLLAMA_IMAGE.match(str(s.get("image", "")))]
    if not found:
        raise InputError("no service runs the ollama/ollama image", where=f"{where}:{_line(lines, 'services')}",
                         hint="migrate reads the service whose `image:` is ollama/ollama[:TAG]")
    name, svc = found[0]
    env = _env_pairs(svc.get("environment"), f"{where}:{_line(lines, 'services', name, 'environment')}")
    container_port = _port_of_host(env.get("OLLAMA_HOST"))
    published = None
    for i, p in enumerate(svc.get("ports") or []):
        if isinstance(p, dict) and int(p.get("target", 0) or 0) == container_port:
            published = int(p.get("published") or container_port)
        elif isinstance(p, (str, int)):
            parts = str(p).split("/")[0].split(":")
            if parts and parts[-1].isdigit() and int(parts[-1]) == container_port:
                published = int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else container_port
    src = Source("compose", f"{where} (service {name})", target="compose")
    _take_env(src, env, lambda k: f"{where}:{_line(lines, 'services', name, 'environment', k)}")
    src.names = _names_in_command(svc.get("command")) + _names_in_command(svc.get("entrypoint"))
    hc = (svc.get("healthcheck") or {}).get("test") if isinstance(svc.get("healthcheck"), dict) else None
    src.names += _names_in_command(hc)
    label = (svc.get("labels") or {}).get("dev.llmctl.model") if isinstance(svc.get("labels"), dict) else None
    if label:
        src.names.append(str(label))
    if published:
        src.url = f"http://127.0.0.1:{published}"
    return src


def _kubernetes(docs: list[tuple[Any, dict]], where: str) -> Source:
    for doc, lines in docs:
        if not isinstance(doc, dict):
            continue
        spec = doc.get("spec") or {}
        pod = spec if doc.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
        base: tuple[Any, ...] = ("spec",) if doc.get("kind") == "Pod" else ("spec", "template", "spec")
        for ci, c in enumerate(pod.get("containers") or []):
            if not isinstance(c, dict) or not OLLAMA_IMAGE.match(str(c.get("image", ""))):
                continue
            env = _env_pairs(c.get("env"), f"{where}:{_line(lines, *base, 'containers', ci)}")
            src = Source("kubernetes", f"{where} ({doc.get('kind')} {(doc.get('metadata') or {}).get('name')})",
                         target="kubernetes")
            idx = {e.get("name"): k for k, e in enumerate(c.get("env") or []) if isinstance(e, dict)}
            _take_env(src, env, lambda k: f"{where}:{_line(lines, *base, 'containers', ci, 'env', idx.get(k, 0))}")
            src.names = _names_in_command(c.get("command")) + _names_in_command(c.get("args"))
            for probe in ("startupProbe", "readinessProbe"):
                src.names += _names_in_command(((c.get(probe) or {}).get("exec") or {}).get("command"))
            labels = (doc.get("metadata") or {}).get("labels") or {}
            if labels.get("llmctl.dev/model"):
                src.names.append(str(labels["llmctl.dev/model"]))
            src.notes.append("a cluster is not queried: pass --url to read the live server's models")
            return src
    raise InputError("no container runs the ollama/ollama image", where=f"{where}:1",
                     hint="migrate reads the Deployment, StatefulSet or Pod whose container image is ollama/ollama")


def _take_env(src: Source, env: dict[str, str], line_of: Any) -> None:
    for key in SERVER_ENV:
        if key in env:
            src.env[key] = env[key]
            src.env_lines[key] = line_of(key)


def _spec(text: str, where: str) -> Source:
    from llmctl.spec import load_spec_text

    spec = load_spec_text(text, where)
    from llmctl.planner import make_plan

    plan = make_plan(spec, base_dir=Path(where).resolve().parent)
    if plan.backend != "ollama":
        raise InputError(f"the spec's plan serves it with {plan.backend}, not Ollama: there is nothing to migrate",
                         where=where, hint="migrate reads a spec whose plan is Ollama (overrides.backend: ollama)")
    src = Source("spec", where, spec=spec, plan=plan, target=spec.target)
    from llmctl.render import build_service

    service = build_service(plan, spec)
    _take_env(src, dict(service.env), lambda k: f"{where} (rendered by the Ollama engine)")
    src.names = [plan.model.ollama_tag or spec.model]
    port = spec.endpoint.port or service.ports[0].host
    src.url = f"http://{'127.0.0.1' if spec.endpoint.bind in ('0.0.0.0', '::') else spec.endpoint.bind}:{port}"
    return src
