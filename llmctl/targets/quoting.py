"""Quoting for every value a template inserts. Templates never insert a raw string.

- YAML: a double-quoted scalar with JSON-like escapes (YAML 1.2 §7.3.1); characters YAML may not
  carry raw (C0/C1 controls, BOM, U+2028/2029, non-characters) become \\uXXXX escapes.
- Kubernetes command/args/env values: YAML quoting after doubling `$` (`$(VAR)` expansion).
- compose: YAML quoting after doubling `$`, since Compose interpolates `$VAR` in every value
  (https://docs.docker.com/reference/compose-file/interpolation/: "$$" is a literal "$").
- systemd: one word in double quotes with C escapes (systemd.syntax(7), "Quoting"); `%` → `%%`
  (specifiers, systemd.unit(5)); in command lines `$` → `$$` (systemd.service(5), "Command lines").
"""

from __future__ import annotations

from typing import Any

from llmctl.errors import InputError

_YAML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _yaml_char(ch: str) -> str:
    if ch in _YAML_ESCAPES:
        return _YAML_ESCAPES[ch]
    o = ord(ch)
    if 0xD800 <= o <= 0xDFFF:
        raise InputError(f"value contains an unpaired surrogate (U+{o:04X}), which is not valid text")
    if o < 0x20 or 0x7F <= o <= 0x9F or o in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
        return f"\\u{o:04x}"
    return ch


def yaml_str(text: str) -> str:
    return '"' + "".join(_yaml_char(c) for c in text) + '"'


def yaml_value(value: Any) -> str:
    """Any scalar as YAML: strings quoted, numbers and booleans as themselves."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return yaml_str(value)
    raise TypeError(f"cannot quote {type(value).__name__} for YAML")


def kube_expand_value(value: Any) -> str:
    """A container command/args/env value: Kubernetes expands `$(VAR)` there and reads `$$` as `$`
    (https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/),
    so every `$` is doubled — `$(HF_TOKEN)` in a model name stays text, never a secret's value."""
    return yaml_str(str(value).replace("$", "$$"))


def compose_value(value: Any) -> str:
    if isinstance(value, str):
        return yaml_str(value.replace("$", "$$"))
    return yaml_value(value)


_SD_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _systemd_word(text: str, *, dollar: bool) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if ch in _SD_ESCAPES:
            out.append(_SD_ESCAPES[ch])
        elif ch == "%":
            out.append("%%")
        elif ch == "$" and dollar:
            out.append("$$")
        elif 0xD800 <= o <= 0xDFFF:
            raise InputError(f"value contains an unpaired surrogate (U+{o:04X}), which is not valid text")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif not ch.isprintable() and ch != " ":
            # line/paragraph separators, C1 controls, BOM…: escaped so no tool sees a line break
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_arg(value: Any) -> str:
    """One argument of ExecStart=/ExecStartPre=/…: quoted, specifiers and `$` escaped."""
    return _systemd_word(str(value), dollar=True)


def systemd_env(value: Any) -> str:
    """One `NAME=value` assignment of Environment= (no `$` expansion there, specifiers still apply)."""
    return _systemd_word(str(value), dollar=False)


def systemd_text(value: Any) -> str:
    """Free text (Description=): not unquoted by systemd, so only keep it on one line and escape `%`."""
    text = "".join(c if (c.isprintable() and c != "\\") else "?" for c in str(value))
    return text.replace("%", "%%").strip() or "?"


def comment_text(value: Any) -> str:
    """Text inside a `#` comment: one line, printable."""
    return "".join(c if c.isprintable() else "?" for c in str(value))
