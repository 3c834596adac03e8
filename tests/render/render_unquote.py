"""Readers for rendered values, following each format's documented rules, for round-trip checks."""

from __future__ import annotations

import re

_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'", "s": " "}


def systemd_words(value: str) -> list[str]:
    """Split a unit-file value into words like systemd's extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)."""
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            break
        word, quote = [], None
        while i < n:
            ch = value[i]
            if quote is None and ch in " \t":
                break
            if ch == "\\":
                nxt = value[i + 1]
                if nxt == "x":
                    word.append(chr(int(value[i + 2:i + 4], 16)))
                    i += 4
                    continue
                if nxt == "u":
                    word.append(chr(int(value[i + 2:i + 6], 16)))
                    i += 6
                    continue
                if nxt == "U":
                    word.append(chr(int(value[i + 2:i + 10], 16)))
                    i += 10
                    continue
                word.append(_C_ESCAPES[nxt])
                i += 2
                continue
            if quote is None and ch in "\"'":
                quote = ch
            elif ch == quote:
                quote = None
            else:
                word.append(ch)
            i += 1
        assert quote is None, f"unterminated quote in {value!r}"
        words.append("".join(word))
    return words


def systemd_unit(text: str) -> dict[str, list[str]]:
    """`Key=value` lines per key (continuations joined), in order."""
    out: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").split("\n"):
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def systemd_specifiers(word: str) -> str:
    assert re.fullmatch(r"(?:[^%]|%%)*", word), f"unescaped specifier in {word!r}"
    return word.replace("%%", "%")


def systemd_exec(value: str) -> list[str]:
    """An Exec*= line → argv, as systemd runs it (`$$` → `$`, `%%` → `%`; prefix '-' dropped)."""
    words = systemd_words(value.lstrip("-@:+!"))
    out = []
    for w in words:
        w = systemd_specifiers(w)
        assert re.fullmatch(r"(?:[^$]|\$\$)*", w), f"unescaped $ in {w!r}"
        out.append(w.replace("$$", "$"))
    return out


def kube_expand(value: str) -> str:
    """Kubernetes $(VAR) expansion as the kubelet applies it to command/args/env, with no variables defined
    that could change the value: `$$` → `$`; a `$(NAME)` reference is an error here (it would expand)."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            assert nxt != "(", f"unescaped $( in {value!r}: Kubernetes would expand it"
        out.append(ch)
        i += 1
    return "".join(out)
