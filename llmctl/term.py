"""How output looks on a terminal: tables that fit its width, colour that NO_COLOR turns off, and
numbers and counts in words people read (1 request, 2 requests; 4,468,220 not 4.46822e+06)."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Sequence

MIN_WRAP = 16  # a wrapped text column is never narrower than this
STYLES = {"pass": "32", "fail": "1;31", "warn": "33", "skip": "2", "bold": "1"}


def color_enabled(stream: Any = None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org) or --no-color."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, style: str, *, stream: Any = None) -> str:
    if not color_enabled(stream):
        return text
    return f"\033[{STYLES.get(style, style)}m{text}\033[0m"


def verdict_word(word: str) -> str:
    """PASS / FAIL / WARN / SKIP (any case) in their colours."""
    return paint(word, word.lower()) if word.lower() in STYLES else word


def terminal_width() -> int | None:
    """Columns a table must fit: $COLUMNS, else the terminal's width when stdout is one; None (no
    limit) when output goes to a file or a pipe, so saved output is never cut."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return None


def _width(text: str) -> int:
    """Columns `text` takes on a terminal: its longest line, colour codes not counted."""
    if "\x1b" in text:
        import re

        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return max((len(line) for line in text.split("\n")), default=0)


def grid(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, maxcolwidths: Sequence[int | None] | None = None,
         colalign: Sequence[str] | None = None, tablefmt: str = "simple") -> str:
    """A plain-text table: headers (several lines where they hold "\n"), a rule of dashes ("simple";
    none for "plain"), then the rows; columns two spaces apart, cells wrapped to `maxcolwidths`."""
    import textwrap

    n = len(headers)
    limits = list(maxcolwidths or [None] * n)
    align = list(colalign or ["left"] * n)

    def cell_lines(value: Any, limit: int | None) -> list[str]:
        text = "" if value is None else str(value)
        out: list[str] = []
        for line in text.split("\n") or [""]:
            if limit and _width(line) > limit:
                out.extend(textwrap.wrap(line, width=limit, break_on_hyphens=True) or [""])
            else:
                out.append(line)
        return out or [""]

    head = [str(h).split("\n") for h in headers]
    body = [[cell_lines(row[i] if i < len(row) else "", limits[i]) for i in range(n)] for row in rows]
    widths = [max([_width(x) for x in head[i]] + [_width(x) for r in body for x in r[i]] + [0]) for i in range(n)]

    def fmt(cells: list[list[str]], top: bool = False) -> list[str]:
        height = max(len(c) for c in cells) if cells else 1
        lines = []
        for k in range(height):
            parts = []
            for i, c in enumerate(cells):
                # headers sit at the bottom of their block, cells at the top
                idx = k - (height - len(c)) if top else k
                text = c[idx] if 0 <= idx < len(c) else ""
                pad = widths[i] - _width(text)
                parts.append(" " * pad + text if align[i] == "right" else text + " " * pad)
            lines.append("  ".join(parts).rstrip())
        return lines

    out = fmt(head, top=True) if any(str(h) for h in headers) else []
    if tablefmt == "simple":
        out.append("  ".join("-" * w for w in widths))
    for r in body:
        out.extend(fmt(r))
    return "\n".join(out)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, wrap: Sequence[str] = (),
          optional: Sequence[str] = (), wide: bool = False, width: int | None = None,
          colalign: Sequence[str] | None = None, tablefmt: str = "simple") -> str:
    """A table that fits `width` (default: the terminal's): first headers go over several lines,
    then the `wrap` columns are wrapped (down to MIN_WRAP characters), then `optional` columns are
    dropped in that order, and a last line says which. `wide` (-o wide) shows everything unwrapped."""
    if width is None and not wide:
        width = terminal_width()
    headers = list(headers)
    cols = list(range(len(headers)))
    aligns = list(colalign or ["left"] * len(headers))

    def render(keep: list[int], limits: dict[int, int]) -> str:
        return grid([[r[i] for i in keep] for r in rows], [headers[i] for i in keep],
                    maxcolwidths=[limits.get(i) for i in keep], colalign=[aligns[i] for i in keep], tablefmt=tablefmt)

    text = render(cols, {})
    if wide or width is None or _width(text) <= width:
        return text
    # first: headers wider than their cells go over several lines
    cell_w = [max((_width(str(r[i])) for r in rows), default=0) for i in cols]
    headers = [h.replace(" ", "\n") if _width(h) > cell_w[i] else h for i, h in enumerate(headers)]
    text = render(cols, {})
    if _width(text) <= width:
        return text
    wrap = [headers[list(map(_plain_header, headers)).index(w)] if w in map(_plain_header, headers) else w for w in wrap]
    optional = [headers[list(map(_plain_header, headers)).index(o)] if o in map(_plain_header, headers) else o
                for o in optional]
    dropped: list[str] = []
    keep = list(cols)
    for drop in [None, *optional]:
        if drop is not None and drop in headers:
            keep.remove(headers.index(drop))
            dropped.append(drop.replace("\n", " "))
        limits: dict[int, int] = {}
        for _ in range(60):  # narrow the widest wrapped column first, so the wrapped columns end up even
            text = render(keep, limits)
            over = _width(text) - width
            if over <= 0:
                return text + _dropped_note(dropped, width)
            targets = [headers.index(w) for w in wrap if w in headers and headers.index(w) in keep]
            current = {i: limits.get(i) or max((_width(str(r[i])) for r in rows), default=MIN_WRAP) for i in targets}
            current = {i: w for i, w in current.items() if w > MIN_WRAP}
            if not current:
                break
            ranked = sorted(set(current.values()), reverse=True)
            top = ranked[0]
            second = ranked[1] if len(ranked) > 1 else MIN_WRAP
            widest = [i for i, w in current.items() if w == top]
            share = -(-over // len(widest))  # ceil
            for i in widest:
                limits[i] = max(MIN_WRAP, second if len(ranked) > 1 and top - share < second else top - share)
    return text + _dropped_note(dropped, width)


def _plain_header(header: str) -> str:
    return header.replace("\n", " ")


def _dropped_note(dropped: list[str], width: int) -> str:
    if not dropped:
        return ""
    import textwrap

    note = f"(not shown to fit {width} columns: {', '.join(dropped)}; -o wide shows all)"
    return "\n" + textwrap.fill(note, width=max(width, 20), break_on_hyphens=False)


def num(x: float | int | None, digits: int = 3) -> str:
    """A number as people write it: 4,468,220 · 123 · 12.3 · 0.0421; never 4.46822e+06."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    if ax >= 1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.{digits}g}"


def count(n: float | int, noun: str, plural: str | None = None) -> str:
    """`1 request`, `2 requests`, `123.3 requests`, `1 replica`."""
    one = isinstance(n, (int, float)) and float(n) == 1.0
    return f"{num(n)} {noun if one else (plural or noun + 's')}"
