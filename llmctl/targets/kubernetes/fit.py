"""Would a cluster schedule this pod? The kube-scheduler's filter plugins that decide it for a model
server, applied to a rendered PodSpec and the nodes of `kubectl get nodes -o json`
(kubernetes.io/docs/reference/scheduling/config/#scheduling-plugins):

- NodeUnschedulable: a cordoned node (spec.unschedulable) takes no new pod;
- NodeAffinity: every nodeSelector label must be on the node with that value;
- TaintToleration: each NoSchedule/NoExecute taint must be tolerated;
- NodeResourcesFit: the pod's requests (cpu, memory, nvidia.com/gpu …) within the node's allocatable.

A node must also be Ready. Other pods' usage is unknown here, so allocatable is an upper bound.
"""

from __future__ import annotations

import math
import re
from typing import Any

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}


def quantity(value: Any) -> float:
    """A Kubernetes resource quantity as a number ("15890m" → 15.89, "64Gi" → 68719476736)."""
    if value is None:
        return 0.0
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value).strip())
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2), 1)


def _tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    if taint.get("effect") not in ("NoSchedule", "NoExecute"):
        return True  # PreferNoSchedule only lowers the score
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value") == taint.get("value"):
            return True
    return False


def pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in pod.get("containers", []):
        res = c.get("resources", {})
        # a container with limits but no requests requests its limits
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for k, v in req.items():
            total[k] = total.get(k, 0.0) + quantity(v)
    return total


def why_not(pod: dict[str, Any], node: dict[str, Any]) -> str | None:
    """None when `node` can take `pod`, else the filter that rejects it."""
    meta, spec, status = node.get("metadata", {}), node.get("spec", {}), node.get("status", {})
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])):
        return "not Ready"
    if spec.get("unschedulable"):
        return "cordoned (unschedulable)"
    labels = meta.get("labels") or {}
    for k, v in (pod.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return f"nodeSelector {k}={v} (node has {labels.get(k)!r})"
    for taint in spec.get("taints") or []:
        if not _tolerated(taint, pod.get("tolerations") or []):
            return f"taint {taint.get('key')}:{taint.get('effect')} not tolerated"
    alloc = status.get("allocatable") or {}
    for k, need in pod_requests(pod).items():
        have = quantity(alloc.get(k))
        if need > have + 1e-9:
            return f"requests {k} {need:g}, allocatable {have:g}"
    return None


def fitting_nodes(pod: dict[str, Any], nodes_doc: dict[str, Any]) -> dict[str, str | None]:
    """{node name: None if it fits, else why not}."""
    return {n.get("metadata", {}).get("name", "?"): why_not(pod, n) for n in nodes_doc.get("items", [])}


def replica_slots(pod: dict[str, Any], nodes_doc: dict[str, Any]) -> int:
    """How many copies of the pod the fitting nodes hold at most (each request divided into allocatable)."""
    need = pod_requests(pod)
    slots = 0
    for n in nodes_doc.get("items", []):
        if why_not(pod, n) is None:
            alloc = n.get("status", {}).get("allocatable") or {}
            slots += min((math.floor(quantity(alloc.get(k)) / v) for k, v in need.items() if v > 0), default=0)
    return slots
