"""The bench chart: measured curves (solid) over the plan's predicted ones (dashed), and a second
endpoint's measured curves when compared. SVG (or HTML with the SVG and the table), drawn with the
axes and scales `llmctl plan --sweep --chart` uses (llmctl/svg_chart.py)."""

from __future__ import annotations

import math
from html import escape

from llmctl.svg_chart import panel_frame, scale, svg_head, write_chart_file


def _series(doc: dict) -> tuple[list, list]:
    """(latency series, throughput series): (name, colour, xs, ys, dashed)."""
    lat, thr = [], []
    runs = [("", doc, "")] + ([(" (B)", doc["compare"], "4,2")] if doc.get("compare") else [])
    colors = {"ttft": "#d62728", "itl": "#1f77b4", "tps": "#2ca02c", "user": "#9467bd"}
    for suffix, run, dash in runs:
        xs = [s["value"] for s in run["steps"]]
        lat.append((f"TTFT p50 ms{suffix}", colors["ttft"], xs, [(s["ttft_ms"] or {}).get("p50") for s in run["steps"]], dash))
        lat.append((f"ms per output token p50{suffix}", colors["itl"], xs,
                    [(s["tpot_ms"] or {}).get("p50") for s in run["steps"]], dash))
        thr.append((f"output tok/s{suffix}", colors["tps"], xs, [s["output_tokens_per_s"] for s in run["steps"]], dash))
        thr.append((f"tok/s per user{suffix}", colors["user"], xs,
                    [(s.get("output_tokens_per_s_per_user") or {}).get("p50") for s in run["steps"]], dash))
    pr = doc.get("predicted")
    if pr:
        xs = [p["value"] for p in pr["points"]]
        lat.append(("TTFT p50 predicted", colors["ttft"], xs, [p["ttft_p50_ms"] for p in pr["points"]], "1,4"))
        lat.append(("ITL p50 predicted", colors["itl"], xs, [p["itl_p50_ms"] for p in pr["points"]], "1,4"))
        thr.append(("output tok/s predicted", colors["tps"], xs, [p["tokens_per_s_per_replica"] for p in pr["points"]], "1,4"))
        thr.append(("tok/s per user predicted", colors["user"], xs, [p["tokens_per_s_per_user"] for p in pr["points"]], "1,4"))
    return lat, thr


def chart_svg(doc: dict, title: str) -> str:
    lat, thr = _series(doc)
    width, height, margin = 900, 400, 60
    panel_w = (width - 3 * margin) / 2
    all_x = [x for _, _, xs, ys, _ in lat + thr for x, y in zip(xs, ys) if y is not None] or [1.0]
    log_x = max(all_x) / max(min(all_x), 1e-9) >= 10
    out = svg_head(width, height, title[:150])
    xlabel = "concurrent users" if doc["steps"][0]["load"] == "concurrency" else "requests/s"

    def panel(x0: float, series: list, ylabel: str) -> None:
        top, bottom = 40, height - 50
        fx, xlo, xhi = scale(all_x, x0, x0 + panel_w, log_x)
        ys_all = [y for _, _, _, ys, _ in series for y in ys if y is not None and math.isfinite(y) and y > 0] or [1.0]
        log_y = max(ys_all) / min(ys_all) >= 30
        fy, ylo, yhi = scale(ys_all if log_y else [0.0, *ys_all], bottom, top, log_y)
        panel_frame(out, x0=x0, width=panel_w, top=top, bottom=bottom, label_y=height - 12,
                    x_axis=(fx, xlo, xhi, log_x), y_axis=(fy, ylo, yhi, log_y), xlabel=xlabel, ylabel=ylabel)
        for i, (name, color, xs, ys, dash) in enumerate(series):
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None and (y > 0 or not log_y)]
            if not pts:
                continue
            coords = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in pts)
            style = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{style}/>')
            for x, y in pts:
                out.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="{2 if dash else 3}" fill="{color}">'
                           f'<title>{escape(name)} at {x:g}: {y:.3g}</title></circle>')
            out.append(f'<line x1="{x0 + 8}" y1="{top + 10 + 13 * i}" x2="{x0 + 20}" y2="{top + 10 + 13 * i}" '
                       f'stroke="{color}" stroke-width="2"{style}/><text x="{x0 + 24}" y="{top + 14 + 13 * i}">'
                       f'{escape(name)}</text>')

    panel(margin, lat, "latency, ms")
    panel(2 * margin + panel_w, thr, "output tokens/s")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(path: str, doc: dict, title: str, table_text: str) -> None:
    write_chart_file(path, title, chart_svg(doc, title), table_text)
