"""Step 4a' of resolution: `hf.co/{user}/{repo}[:{quant}]` (or `huggingface.co/...`), the form Ollama pulls
a GGUF repository from Hugging Face in, read over HTTP without downloading the weights.

Hub facts (https://huggingface.co/docs/hub/ollama, "Custom Quantization"): both domains name the same
repo; without a tag the Hub serves Q4_K_M when the repo has it. llmctl then takes the only quantization
a repo has, and otherwise asks for one. Requests, through huggingface_hub (HF_ENDPOINT, HF_TOKEN): the
repo's file list, then the GGUF header of each file of the quantization by Range requests; a split file
(`...-00001-of-00003.gguf`) is summed over its parts, its architecture read from the first (llama.cpp's
gguf-split writes the model's keys there only). The answer is cached under repo, revision and quant.
"""

from __future__ import annotations

import re
from typing import Any

from llmctl.catalog import Catalog, ResolvedModel
from llmctl.errors import InputError
from llmctl.resolve import cache, gguf_header
from llmctl.resolve.net import STATS, httpx_timeout, read_prefix
from llmctl.resolve.policy import MAX_REMOTE_GGUF_HEADER_BYTES, hub_endpoint, timeouts

PREFIXES = ("hf.co/", "huggingface.co/")
DEFAULT_QUANT = "Q4_K_M"  # the Hub's default for a tag-less reference (docs/hub/ollama.md)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})$")
# the quantization a GGUF file name ends with: Q4_K_M, IQ4_XS, Q8_0, F16, BF16, MXFP4_MOE, UD-Q4_K_XL
_QUANT = re.compile(r"(?:^|[-_.])((?:UD-)?(?:I?Q\d[A-Z0-9_]*|B?F16|F32|MXFP4(?:_MOE)?|TQ\d_\d))$", re.I)
# the first Range request of a file reads this much (a small header whole); each next one twice the last, up
# to _READ_AHEAD_MAX, so a multi-megabyte tokenizer costs a handful of requests
_READ_AHEAD, _READ_AHEAD_MAX = 256 << 10, 4 << 20


def parse_ref(ref: str) -> tuple[str, str | None] | None:
    """`hf.co/user/repo:Q8_0` -> ("user/repo", "Q8_0"); None when `ref` is not of that form."""
    low = ref.lower()
    prefix = next((p for p in PREFIXES if low.startswith(p)), None)
    if prefix is None:
        return None
    path, _, quant = ref[len(prefix):].partition(":")
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not all(parts) or (quant and not re.fullmatch(r"[A-Za-z0-9_.-]+", quant)):
        return None
    return "/".join(parts), (quant or None)


def quant_of(filename: str) -> str | None:
    """The quantization a GGUF file name carries, upper-cased; None for a projector or an unnamed file."""
    base = filename.rsplit("/", 1)[-1]
    if not base.lower().endswith(".gguf") or base.lower().startswith("mmproj"):
        return None
    stem = _SPLIT.sub("", base[:-5])
    m = _QUANT.search(stem)
    return m.group(1).upper() if m else None


def quant_files(files: list[str]) -> dict[str, list[str]]:
    """quantization -> its files (one, or the parts of a split file in order)."""
    out: dict[str, list[str]] = {}
    for f in sorted(files):
        q = quant_of(f)
        if q is not None:
            out.setdefault(q, []).append(f)
    return out


def pick(repo: str, asked: str | None, files: list[str], where: str | None) -> tuple[str, list[str]]:
    groups = quant_files(files)
    if not groups:
        raise InputError(f"hf.co/{repo} has no GGUF file with a quantization in its name", where=where,
                         hint="Ollama and llama.cpp pull GGUF repositories; for a safetensors repo give its id alone")
    have = ", ".join(sorted(groups))
    if asked is None:
        if DEFAULT_QUANT in groups:
            return DEFAULT_QUANT, groups[DEFAULT_QUANT]
        if len(groups) == 1:
            return next(iter(groups.items()))
        raise InputError(f"hf.co/{repo} has no {DEFAULT_QUANT} file; name a quantization: it has {have}",
                         where=where, hint=f"e.g. hf.co/{repo}:{sorted(groups)[0]}")
    q = asked.upper()
    if q not in groups:
        raise InputError(f"hf.co/{repo} has no {asked} file; it has {have}", where=where,
                         hint=f"e.g. hf.co/{repo}:{sorted(groups)[0]}")
    parts = groups[q]
    split = [_SPLIT.search(p[:-5]) for p in parts]
    if len(parts) > 1 and not all(split):
        raise InputError(f"hf.co/{repo} has several {q} files ({', '.join(parts)}); llmctl cannot tell which one "
                         "Ollama pulls", where=where)
    return q, parts


def _key(repo: str, quant: str | None) -> str:
    return f"{repo}@main:{(quant or 'default').upper()}"


def cached(repo: str, quant: str | None) -> dict[str, Any] | None:
    return cache.get("hf-gguf", _key(repo, quant))


def fetch(repo: str, quant: str | None, where: str | None) -> dict[str, Any]:
    """Read the repo's file list and the chosen file's GGUF header(s); cache the answer.
    Raises hub.NotOnHub, NetworkError or InputError."""
    from llmctl.resolve.hub import classify

    try:
        entry = _fetch(repo, quant, where)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - sorted into answers and network failures
        raise classify(exc, repo, where) from None
    cache.put("hf-gguf", _key(repo, quant), entry)
    return entry


def _fetch(repo: str, quant: str | None, where: str | None) -> dict[str, Any]:
    from huggingface_hub import HfApi, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    endpoint = hub_endpoint()
    STATS.requests += 1
    info = HfApi(endpoint=endpoint).model_info(repo, expand=["sha", "siblings", "gated"], timeout=timeouts()[1])
    sha = info.sha or "main"
    q, parts = pick(repo, quant, [s.rfilename for s in (info.siblings or [])], where)
    headers = build_hf_headers()
    client = get_session()
    total = 0
    first: gguf_header.GgufHeader | None = None
    for i, name in enumerate(parts):
        url = hf_hub_url(repo, name, revision=sha, endpoint=endpoint)
        try:
            h = gguf_header.parse(_RemoteFile(client, url, headers, hf_raise_for_status),
                                  budget=MAX_REMOTE_GGUF_HEADER_BYTES, need_arch=(i == 0))
        except gguf_header.GgufError as exc:
            raise InputError(f"the GGUF header of hf.co/{repo}/{name} is corrupt: {exc}", where=where,
                             hint="the file on the Hub is damaged or not GGUF; report it to the repo's owner") from None
        total += h.tensor_bytes or 0
        first = first or h
    assert first is not None
    header = {"version": first.version, "architecture": first.architecture, "kv": first.kv,
              "tensor_count": first.tensor_count, "tensors_read": True, "tensor_bytes": total,
              "n_elements": first.n_elements, "tensor_names": sorted(first.tensor_names),
              "header_bytes": first.header_bytes, "vocab_size": first.vocab_size}
    gated = info.gated if isinstance(info.gated, str) else bool(info.gated)
    return {"repo": repo, "asked": quant, "quant": q, "files": parts, "sha": sha, "gated": gated,
            "header": header, "endpoint": endpoint}


class _RemoteFile:
    """A ByteSource over a Hub file: growing Range requests, served from a buffer."""

    def __init__(self, client: Any, url: str, headers: dict[str, str], on_error: Any):
        self.client, self.url, self.headers, self.on_error = client, url, headers, on_error
        self.start, self.buf, self.ahead = 0, b"", _READ_AHEAD

    def read(self, offset: int, size: int) -> bytes:
        end = offset + size
        if not (self.start <= offset and end <= self.start + len(self.buf)):
            want = max(size, self.ahead)
            self.ahead = min(self.ahead * 2, _READ_AHEAD_MAX)
            self.start, self.buf = offset, read_prefix(self.client, self.url, self.headers, offset, want,
                                                       on_error=self.on_error)
        return self.buf[offset - self.start:end - self.start]


def to_model(catalog: Catalog, ref: str, entry: dict[str, Any], *, where: str | None,
             from_cache: bool) -> ResolvedModel:
    from dataclasses import replace

    from llmctl.resolve.local import model_from_gguf_header

    h = entry["header"]
    header = gguf_header.GgufHeader(**{**h, "tensor_names": set(h.get("tensor_names") or ())})
    repo, quant, files = entry["repo"], entry["quant"], entry["files"]
    # Ollama pulls the reference as written; a tag-less one whose file is not the Hub's default gets its quant
    tag = ref if (entry.get("asked") or quant == DEFAULT_QUANT) else f"{ref}:{quant}"
    parts = f"{len(files)} parts of a split file" if len(files) > 1 else files[0]
    model = model_from_gguf_header(
        catalog, ref, header, where=where, kind="ollama", ollama_tag=tag, source="hub",
        revision=entry.get("sha"), gguf_source=f"{repo}:{quant}",
        notes=(f"{ref} from the Hugging Face Hub{' (cached)' if from_cache else ''}: architecture and "
               f"{header.tensor_bytes} tensor bytes from the GGUF header of {parts}",),
    )
    return replace(model, gguf_quantization=quant, arch=replace(model.arch, gated=bool(entry.get("gated")) or model.arch.gated))
