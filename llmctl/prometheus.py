"""Prometheus text exposition, read just enough: each series name's value summed over its label sets.

The format (https://prometheus.io/docs/instrumenting/exposition_formats/): `# HELP`/`# TYPE` comment
lines, then one sample a line, `name{label="v",…} value [timestamp]`. Histograms expose `<name>_sum`
and `<name>_count`; counters of the OpenMetrics style end in `_total`.
"""

from __future__ import annotations


def series(text: str) -> tuple[dict[str, float], dict[str, str]]:
    """(name -> value summed over its label sets, name -> the label text of its last sample)."""
    sums: dict[str, float] = {}
    labels: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split(" ", 1)[0]
        if "{" in head:
            name, _, rest = line.partition("{")
            label_text, _, tail = rest.rpartition("}")
        else:
            name, label_text, tail = head, "", line[len(head):]
        fields = tail.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        sums[name] = sums.get(name, 0.0) + value
        labels[name] = label_text
    return sums, labels
