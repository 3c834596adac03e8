"""The SVG drawing both charts share (`llmctl plan --sweep --chart`, `llmctl bench --chart`): linear or
log scales, round tick values, the page head, and a panel's frame, ticks and axis labels."""

from __future__ import annotations

import math
from html import escape

CHART_MARK = "llmctl-sweep-chart"  # an existing chart with this mark may be replaced


def scale(values: list[float], lo_px: float, hi_px: float, log: bool):
    vals = [v for v in values if math.isfinite(v) and (v > 0 or not log)] or [1.0]
    lo, hi = min(vals), max(vals)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5

    def f(v: float) -> float:
        x = math.log10(v) if log else v
        return lo_px + (x - lo) / (hi - lo) * (hi_px - lo_px)

    return f, (10 ** lo if log else lo), (10 ** hi if log else hi)


def ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        out = []
        e = math.floor(math.log10(lo))
        while 10 ** e <= hi * 1.0001:
            for m in (1, 2, 5):
                t = m * 10 ** e
                if lo * 0.9999 <= t <= hi * 1.0001:
                    out.append(t)
            e += 1
        return out or [lo, hi]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 6:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9:
        out.append(t)
        t += step
    return out


def svg_head(width: int, height: int, title: str) -> list[str]:
    """The opening lines of a chart: the svg element, the mark, a white page, the title."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            'font-family="sans-serif" font-size="11">',
            f"<!-- {CHART_MARK} -->",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="12">{escape(title)}</text>']


def panel_frame(out: list[str], *, x0: float, width: float, top: float, bottom: float, label_y: float,
                x_axis: tuple, y_axis: tuple, xlabel: str, ylabel: str, x_marks: bool = False) -> None:
    """A panel's box, tick labels (y ticks with grid lines; `x_marks`: a short mark at each x tick)
    and axis labels. `x_axis`/`y_axis`: (to pixels, low, high, log) as `scale` gives them plus log."""
    fx, xlo, xhi, log_x = x_axis
    fy, ylo, yhi, log_y = y_axis
    out.append(f'<rect x="{x0}" y="{top}" width="{width}" height="{bottom - top}" fill="none" stroke="#999"/>')
    for t in ticks(xlo, xhi, log_x):
        X = fx(t)
        mark = f'<line x1="{X:.1f}" y1="{bottom}" x2="{X:.1f}" y2="{bottom + 4}" stroke="#666"/>' if x_marks else ""
        out.append(f'{mark}<text x="{X:.1f}" y="{bottom + 16}" text-anchor="middle">{t:g}</text>')
    for t in ticks(ylo, yhi, log_y):
        Y = fy(t)
        out.append(f'<line x1="{x0}" y1="{Y:.1f}" x2="{x0 + width}" y2="{Y:.1f}" stroke="#eee"/>'
                   f'<text x="{x0 - 4}" y="{Y + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{x0 + width / 2}" y="{label_y}" text-anchor="middle">{escape(xlabel)}'
               f'{" (log scale)" if log_x else ""}</text>')
    out.append(f'<text transform="translate({x0 - 44},{(top + bottom) / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(ylabel)}{" (log)" if log_y else ""}</text>')


def write_chart_file(path: str, title: str, svg: str, table_text: str) -> None:
    """The chart as `path` asks: the SVG itself (.svg), else an HTML page with it and the table."""
    from pathlib import Path

    from llmctl.errors import InputError
    from llmctl.fileio import write_atomic

    p = Path(path)
    if p.suffix.lower() == ".svg":
        text = svg
    else:
        text = (f"<!DOCTYPE html>\n<!-- {CHART_MARK} -->\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
                "<style>body{font-family:sans-serif;margin:2em}pre{font-size:12px}</style></head><body>\n"
                f"<h1 style=\"font-size:16px\">{escape(title)}</h1>\n{svg}\n<pre>{escape(table_text)}</pre>\n</body></html>\n")
    try:
        write_atomic(p, text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc}", where="--chart") from None


def check_chart_path(chart: str) -> None:
    """Before any work: the chart's name says SVG or HTML, and an existing file is one llmctl wrote."""
    from pathlib import Path

    from llmctl.errors import InputError

    p = Path(chart)
    if p.suffix.lower() not in (".svg", ".html", ".htm"):
        raise InputError(f"the chart must be .svg or .html, got {p.name!r}", where="--chart")
    if p.is_dir():
        raise InputError(f"{chart} is a folder", where="--chart")
    if p.exists():
        try:
            head = p.read_text(encoding="utf-8", errors="replace")[:400]
        except OSError as exc:
            raise InputError(f"cannot read {chart}: {exc}", where="--chart") from None
        if CHART_MARK not in head:
            raise InputError(f"{chart} exists and was not written by llmctl; not overwriting it", where="--chart",
                             hint="choose another file name or remove the file")
