"""The decisions as people read them: `report.md` and the table `llmctl migrate` prints."""

from __future__ import annotations

import json
from typing import Any

MARK = {"carried": "carried", "approximated": "approx.", "dropped": "DROPPED"}


def _val(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def table(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    out = []
    for m in doc["models"]:
        out.append(f"{m['tag']} → {m['hf_repo']} ({m['confidence']}) on vLLM"
                   + (f", plan: {m['plan']['summary']}" if m.get("plan") else ""))
        rows = [[i["item"], _val(i["ollama"])[:40], _val(i["vllm"])[:48], MARK[i["status"]], i["where"]]
                for i in m["items"]]
        out.append(tabulate(rows, headers=["item", "ollama", "vllm", "status", "where"], tablefmt="simple"))
        out.append("")
        out.append("vllm serve " + " ".join(_shell(a) for a in m.get("vllm_args", [])))
        for w in m.get("warnings", []):
            out.append(f"  ! {w}")
    out.append("")
    out.append("client changes:")
    for line in doc["clients"]["common"]:
        out.append(f"  - {line}")
    for style, lines in doc["clients"]["per_style"].items():
        out.append(f"  {style}:")
        for line in lines:
            out.append(f"    - {line}")
    if doc.get("written"):
        out.append("")
        out.append(f"wrote {doc['out']}/: " + ", ".join(doc["written"]))
        out.append(f"next: read {doc['out']}/report.md; `llmctl plan {doc['out']}/vllm.yaml` shows the vLLM plan in full")
    return "\n".join(out)


def _shell(word: str) -> str:
    import shlex

    return shlex.quote(word)


def markdown(doc: dict[str, Any], inventory: dict[str, Any]) -> str:
    src = inventory["source"]
    lines = ["# Migration from Ollama to vLLM — decisions", "",
             f"Source ({src['kind']}): read from {src['read_from']}.",
             f"Ollama version: {inventory['server'].get('version') or 'unknown'}. Nothing was changed on the Ollama side.",
             ""]
    env = inventory["server"].get("env") or {}
    if env:
        lines += ["Server environment:", ""] + [f"- `{k}={v}`" for k, v in env.items()] + [""]
    for m in doc["models"]:
        lines += [f"## `{m['tag']}` → `{m['hf_repo']}`", "",
                  f"Mapping: **{m['confidence']}** — {m['how']}.", ""]
        if m.get("plan"):
            lines += [f"Plan: {m['plan']['summary']}.", ""]
        lines += ["| item | Ollama | vLLM | status | where | reason |", "|---|---|---|---|---|---|"]
        for i in m["items"]:
            cells = [i["item"], _val(i["ollama"]), _val(i["vllm"]), i["status"], i["where"], i["reason"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines += ["", "vLLM command line:", "", "```", "vllm serve " + " ".join(_shell(a) for a in m.get("vllm_args", [])),
                  "```", ""]
        if m.get("warnings"):
            lines += ["Plan warnings:", ""] + [f"- {w}" for w in m["warnings"]] + [""]
    lines += ["## Client changes", ""] + [f"- {c}" for c in doc["clients"]["common"]] + [""]
    for style, items in doc["clients"]["per_style"].items():
        lines += [f"**{style}**", ""] + [f"- {c}" for c in items] + [""]
    return "\n".join(lines)
