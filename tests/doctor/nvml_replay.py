"""Replay recorded NVML answers through the real `pynvml` module.

No GPU is available where the tests run, so NVML's functions are replaced, one by one, with functions
that answer from a recording (tests/doctor/data/*.json). The real pynvml module, its constants and its
NVMLError classes stay in place, so llmctl.inventory runs its ordinary code path. A function the
recording lacks raises NVMLError_NotSupported, as NVML does for a feature a device lacks, and is
noted in `unrecorded` so a test can insist that nothing unrecorded was asked.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

DATA = Path(__file__).parent / "data"


def load(name: str = "nvml_8x_a100_sxm4_80gb.json") -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _error(code_name: str) -> pynvml.NVMLError:
    return pynvml.NVMLError(getattr(pynvml, code_name))


class NvmlReplay:
    def __init__(self, recording: dict[str, Any]):
        self.rec = copy.deepcopy(recording)
        self.calls: list[str] = []
        self.unrecorded: list[str] = []
        self.initialised = False

    def _answer(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("NVML_ERROR_"):
            raise _error(value)
        if isinstance(value, dict):
            return SimpleNamespace(**value)
        return value

    def _device(self, handle: int) -> dict[str, Any]:
        if not self.initialised:
            raise _error("NVML_ERROR_UNINITIALIZED")
        return self.rec["devices"][handle]

    def install(self, monkeypatch: Any) -> "NvmlReplay":
        def system(fn: str):
            def call(*args: Any) -> Any:
                self.calls.append(fn)
                if not self.initialised:
                    raise _error("NVML_ERROR_UNINITIALIZED")
                if fn not in self.rec["system"]:
                    self.unrecorded.append(fn)
                    raise _error("NVML_ERROR_NOT_SUPPORTED")
                return self._answer(self.rec["system"][fn])

            return call

        def device(fn: str):
            def call(handle: int, *args: Any) -> Any:
                self.calls.append(fn)
                dev = self._device(handle)
                if fn not in dev:
                    self.unrecorded.append(fn)
                    raise _error("NVML_ERROR_NOT_SUPPORTED")
                value = dev[fn]
                if args and isinstance(value, list) and fn.startswith("nvmlDeviceGetNvLink"):
                    link = args[0]
                    if link >= len(value):
                        return self._answer(value[-1] if isinstance(value[-1], str) else "NVML_ERROR_INVALID_ARGUMENT")
                    return self._answer(value[link])
                return self._answer(value)

            return call

        def init() -> None:
            self.calls.append("nvmlInit")
            failure = self.rec.get("nvmlInit")
            if failure:
                raise _error(failure)
            self.initialised = True

        def shutdown() -> None:
            self.calls.append("nvmlShutdown")
            self.initialised = False

        def handle_by_index(i: int) -> int:
            self.calls.append("nvmlDeviceGetHandleByIndex")
            if not self.initialised:
                raise _error("NVML_ERROR_UNINITIALIZED")
            if i >= len(self.rec["devices"]):
                raise _error("NVML_ERROR_INVALID_ARGUMENT")
            if self.rec["devices"][i].get("lost"):
                raise _error("NVML_ERROR_GPU_IS_LOST")
            return i

        def pair(fn: str, key: str):
            def call(a: int, b: int, *args: Any) -> Any:
                self.calls.append(fn)
                self._device(a), self._device(b)
                if key not in self.rec["pairs"]:
                    self.unrecorded.append(fn)
                    raise _error("NVML_ERROR_NOT_SUPPORTED")
                return self._answer(self.rec["pairs"][key][a][b])

            return call

        def p2p(a: int, b: int, index: int) -> Any:
            if index != pynvml.NVML_P2P_CAPS_INDEX_NVLINK:
                self.unrecorded.append(f"nvmlDeviceGetP2PStatus[{index}]")
                raise _error("NVML_ERROR_NOT_SUPPORTED")
            return pair("nvmlDeviceGetP2PStatus", "nvmlDeviceGetP2PStatus/NVML_P2P_CAPS_INDEX_NVLINK")(a, b)

        monkeypatch.setattr(pynvml, "nvmlInit", init)
        monkeypatch.setattr(pynvml, "nvmlShutdown", shutdown)
        monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", handle_by_index)
        for fn in ("nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion", "nvmlSystemGetNVMLVersion",
                   "nvmlDeviceGetCount"):
            monkeypatch.setattr(pynvml, fn, system(fn))
        for fn in ("nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo", "nvmlDeviceGetMemoryInfo",
                   "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMigMode", "nvmlDeviceGetNvLinkState",
                   "nvmlDeviceGetNvLinkRemoteDeviceType", "nvmlDeviceGetNvLinkRemotePciInfo"):
            monkeypatch.setattr(pynvml, fn, device(fn))
        monkeypatch.setattr(
            pynvml, "nvmlDeviceGetTopologyCommonAncestor",
            pair("nvmlDeviceGetTopologyCommonAncestor", "nvmlDeviceGetTopologyCommonAncestor"),
        )
        monkeypatch.setattr(pynvml, "nvmlDeviceGetP2PStatus", p2p)
        return self
