"""Step 4a of resolution: a Hugging Face repository read over HTTP, never downloading a weight.

Three kinds of request, through huggingface_hub (which honours HF_ENDPOINT, HF_TOKEN and gated repos):
the repo's file list and commit (`/api/models/{repo}/revision/{rev}`), its `config.json`, and the first
bytes of each safetensors file (a Range request for the header; the weights' bytes are the sum of the
header's data_offsets). The answer is cached under the repo and revision asked for, so the next plan
of the same model makes no request.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmctl.catalog import Catalog, ModelArch, ResolvedModel
from llmctl.errors import InputError
from llmctl.model_refs import match_arch, with_catalog_facts
from llmctl.resolve import cache
from llmctl.resolve.hf_config import SafetensorsError, header_length, hf_config_to_arch, hf_quant_name, tensor_bytes
from llmctl.resolve.net import STATS, NetworkError, httpx_timeout, is_network_failure, read_prefix
from llmctl.resolve.policy import MAX_REMOTE_HEADER_BYTES, hub_endpoint, timeouts

# transformers' own weight file names: model.safetensors, or model-00001-of-00004.safetensors with an index
_WEIGHT_FILE = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")
_PROBE = 16 * 1024  # first bytes asked of a shard: the whole header of a typical shard
_PARALLEL = 4


def cached(hf_id: str, revision: str | None) -> dict[str, Any] | None:
    return cache.get("hf", _key(hf_id, revision))


def _key(hf_id: str, revision: str | None) -> str:
    return f"{hf_id}@{revision or 'main'}"


def fetch(hf_id: str, revision: str | None, where: str | None) -> dict[str, Any]:
    """Read the repo from the Hub and cache what was learned. Raises NetworkError or InputError."""
    try:
        entry = _fetch(hf_id, revision, where)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - sorted below into network failures and answers
        raise classify(exc, hf_id, where) from None
    cache.put("hf", _key(hf_id, revision), entry)
    return entry


def _fetch(hf_id: str, revision: str | None, where: str | None) -> dict[str, Any]:
    from huggingface_hub import HfApi, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint)
    STATS.requests += 1
    info = api.model_info(hf_id, revision=revision, expand=["sha", "siblings", "gated"], timeout=timeouts()[1])
    sha = info.sha or revision or "main"
    files = [s.rfilename for s in (info.siblings or [])]
    headers = build_hf_headers()
    client = get_session()

    def get(name: str) -> bytes:
        STATS.requests += 1
        r = client.get(hf_hub_url(hf_id, name, revision=sha, endpoint=endpoint), headers=headers,
                       timeout=httpx_timeout())
        STATS.bytes_read += len(r.content)
        hf_raise_for_status(r)
        return r.content

    try:
        raw = json.loads(get("config.json").decode("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"config.json of {hf_id} is not valid JSON: {exc}", where=where) from None
    shards = sorted(f for f in files if _WEIGHT_FILE.match(f))
    if not shards and "model.safetensors.index.json" in files:
        index = json.loads(get("model.safetensors.index.json").decode("utf-8"))
        shards = sorted(set(index.get("weight_map", {}).values()))
    if not shards:
        shards = sorted(f for f in files if f.endswith(".safetensors") and "/" not in f
                        and not f.startswith("consolidated"))
    weights = _weights(client, hf_id, sha, endpoint, shards, headers, where) if shards else None
    gated = info.gated if isinstance(info.gated, str) else bool(info.gated)
    return {"hf_id": hf_id, "revision": revision or "main", "sha": sha, "config": raw, "gated": gated,
            "weights": weights, "endpoint": endpoint}


def _weights(client: Any, hf_id: str, sha: str, endpoint: str, shards: list[str], headers: dict[str, str],
             where: str | None) -> dict[str, Any]:
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import hf_raise_for_status

    def one(name: str, probe: int) -> tuple[int, dict[str, int], int]:
        url = hf_hub_url(hf_id, name, revision=sha, endpoint=endpoint)
        head = read_prefix(client, url, headers, 0, probe, on_error=hf_raise_for_status)
        try:
            n = header_length(head)
            if n > MAX_REMOTE_HEADER_BYTES:
                raise SafetensorsError(f"a {n}-byte header is larger than llmctl reads ({MAX_REMOTE_HEADER_BYTES})")
            body = head[8:8 + n]
            if len(body) < n:
                body += read_prefix(client, url, headers, 8 + len(body), n - len(body), on_error=hf_raise_for_status)
            total, dtypes = tensor_bytes(body)
        except SafetensorsError as exc:
            raise InputError(f"the safetensors header of {hf_id}/{name} is corrupt: {exc}", where=where,
                             hint="the file on the Hub is damaged or not safetensors; report it to the repo's owner") from None
        return total, dtypes, n

    first = one(shards[0], _PROBE)
    results = [first]
    if len(shards) > 1:
        probe = min(max(int(first[2] * 1.25) + 64, 1024), _PROBE)
        with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
            results += list(pool.map(lambda s: one(s, probe), shards[1:]))
    dtypes: dict[str, int] = {}
    for _, d, _n in results:
        for k, v in d.items():
            dtypes[k] = dtypes.get(k, 0) + v
    return {"bytes": sum(r[0] for r in results), "files": len(shards), "dtypes": dtypes}


def classify(exc: BaseException, hf_id: str, where: str | None) -> Exception:
    from huggingface_hub import errors as hf_errors

    endpoint = hub_endpoint()
    if isinstance(exc, hf_errors.GatedRepoError):
        return InputError(
            f"{hf_id} is gated on Hugging Face: its files need an access token from an account that was granted access",
            where=where,
            hint=f"ask for access at {endpoint}/{hf_id}, then set HF_TOKEN to a read token "
                 f"({endpoint}/settings/tokens) or run `hf auth login`; or plan offline with a catalog model")
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return InputError(f"{hf_id} has no such revision on Hugging Face", where=where)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return NotOnHub(f"{hf_id} is not on Hugging Face ({endpoint}), or is private (set HF_TOKEN)")
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return NetworkError("HF_HUB_OFFLINE is set")
    if is_network_failure(exc) or (isinstance(exc, hf_errors.HfHubHTTPError) and exc.response is not None
                                   and exc.response.status_code >= 500):
        return NetworkError(f"Hugging Face Hub at {endpoint}: {_short(exc)}")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return NotOnHub(f"{hf_id}: {_short(exc)}")
    return NetworkError(f"Hugging Face Hub at {endpoint}: {_short(exc)}")


class NotOnHub(Exception):
    """The Hub answered: no such repo (or not visible without a token)."""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def to_model(catalog: Catalog, ref: str, entry: dict[str, Any], *, where: str | None, from_cache: bool) -> ResolvedModel:
    hf_id = entry["hf_id"]
    raw = entry["config"]
    try:
        arch = ModelArch.from_mapping(hf_config_to_arch(raw), id=hf_id.split("/")[-1].lower())
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"config.json of {hf_id} lacks a field llmctl needs: {exc}", where=where) from None
    from dataclasses import replace

    known = match_arch(catalog, arch)
    if known is not None:
        arch = with_catalog_facts(arch, known)
    arch = replace(arch, hf_id=hf_id, gated=bool(entry.get("gated")) or arch.gated)
    weights = entry.get("weights") or {}
    quant = hf_quant_name(raw.get("quantization_config") or {}) or _quant_from_dtypes(weights.get("dtypes") or {})
    where_from = "cache" if from_cache else "Hugging Face Hub"
    notes = [f"architecture from config.json of {hf_id} at {str(entry.get('sha'))[:12]} ({where_from})"]
    total = weights.get("bytes") or None
    f32 = (weights.get("dtypes") or {}).get("F32", 0)
    if total and not quant and f32 > total / 2:
        # vLLM serves a float32 checkpoint in 16 bit (dtype "auto"): plan with the bytes it will hold
        notes.append(f"weights: {total} bytes stored, mostly float32; planned as {total - f32 // 2} bytes in 16 bit")
        total -= f32 // 2
    elif total:
        from llmctl.term import count

        notes.append(f"weights: {total} bytes from {count(weights['files'], 'safetensors header')}")
    else:
        notes.append("no safetensors weights listed: weights counted from the architecture")
    return ResolvedModel(reference=ref, kind="hf-cache", arch=arch, hf_id=hf_id, hf_quantization=quant,
                         weight_bytes=total, notes=tuple(notes), source="hub", revision=entry.get("sha"))


def _quant_from_dtypes(dtypes: dict[str, int]) -> str | None:
    """FP8 checkpoints without a quantization_config still store their linear layers as F8_E4M3."""
    total = sum(dtypes.values())
    if total and dtypes.get("F8_E4M3", 0) > total / 2:
        return "FP8"
    return None
