"""Ollama Modelfiles and the `parameters` text of `/api/show`, read the way Ollama reads them.

Grammar (ollama/ollama parser/parser.go, tag v0.32.15, ParseFile): one command per line — FROM,
PARAMETER <name> <value>, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE <system|user|assistant> <text>,
DRAFT, RENDERER, PARSER, REQUIRES — case-insensitive; `#` starts a comment line; a value runs to the
end of the line unless it opens with `"` or `\"\"\"`, in which case it runs, across lines, to the
matching close; a Modelfile without FROM is an error ("no FROM line"). PARAMETER values are typed
by the field of api.Options they name (api/types.go FormatParams): an unknown name is an error, and
`stop` may repeat (a list).

`/api/show` prints the parameters as `fmt.Sprintf("%-*s %#v", 30, name, value)`, one line per value,
list values one line per element (server/routes.go GetModelInfo): Go syntax, strings quoted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from llmctl.errors import InputError

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires")
ROLES = ("system", "user", "assistant")

# the PARAMETER names Ollama v0.32.15 accepts and their Go types (api/types.go: Options and Runner)
OPTION_TYPES: dict[str, str] = {
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int", "top_p": "float",
    "min_p": "float", "typical_p": "float", "repeat_last_n": "int", "temperature": "float",
    "repeat_penalty": "float", "presence_penalty": "float", "frequency_penalty": "float", "stop": "list",
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool",
    "num_thread": "int", "draft_num_predict": "int",
}
# accepted and ignored with a warning by Ollama (parser.go deprecatedParameters)
DEPRECATED = ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat",
              "mirostat_tau", "mirostat_eta")


@dataclass
class Command:
    name: str  # from | parameter name | template | system | message | ...
    args: str
    line: int


@dataclass
class Modelfile:
    commands: list[Command] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        return next((c.args for c in self.commands if c.name == name), None)

    @property
    def from_(self) -> str | None:
        return self.first("from")

    @property
    def template(self) -> str | None:
        return self.first("template")

    @property
    def system(self) -> str | None:
        # a later SYSTEM replaces an earlier one (CreateRequest keeps the last)
        found = [c.args for c in self.commands if c.name == "system"]
        return found[-1] if found else None

    @property
    def adapters(self) -> list[str]:
        return [c.args for c in self.commands if c.name == "adapter"]

    @property
    def license(self) -> list[str]:
        return [c.args for c in self.commands if c.name == "license"]

    @property
    def messages(self) -> list[dict[str, str]]:
        out = []
        for c in self.commands:
            if c.name == "message":
                role, _, content = c.args.partition(": ")
                out.append({"role": role, "content": content})
        return out

    def parameters(self, where: str = "Modelfile") -> dict[str, Any]:
        """The PARAMETERs, typed as Ollama types them (`stop` a list)."""
        out: dict[str, Any] = {}
        for c in self.commands:
            if c.name in COMMANDS[:8] or c.name in ("message", "requires", "from"):
                continue
            if c.name in DEPRECATED:
                continue
            value = typed_value(c.name, c.args, f"{where}:{c.line}")
            if OPTION_TYPES[c.name] == "list":
                out.setdefault(c.name, []).extend(value)
            else:
                out[c.name] = value
        return out


def typed_value(name: str, text: str, where: str) -> Any:
    kind = OPTION_TYPES.get(name)
    if kind is None:
        raise InputError(f"unknown parameter {name!r}", where=where,
                         hint="Ollama v0.32.15 accepts: " + ", ".join(sorted(OPTION_TYPES)))
    try:
        if kind == "int":
            return int(text.strip(), 10)
        if kind == "float":
            value = float(text.strip())
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
        if kind == "bool":
            low = text.strip()
            if low in ("1", "t", "T", "TRUE", "true", "True"):
                return True
            if low in ("0", "f", "F", "FALSE", "false", "False"):
                return False
            raise ValueError
    except ValueError:
        raise InputError(f"parameter {name}: {text!r} is not a valid {kind}", where=where) from None
    return [text] if kind == "list" else text


def parse_modelfile(text: str, where: str = "Modelfile") -> Modelfile:
    """Commands of a Modelfile, with the line each starts on. Errors name the line (exit 2)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    mf = Modelfile()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        stripped = raw.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        m = re.match(r"([A-Za-z]+)(?:[ \t]+|$)", stripped)
        if not m or m.group(1).lower() not in COMMANDS or not m.group(0)[len(m.group(1)):]:
            raise InputError('command must be one of "from", "license", "template", "system", "adapter", "draft", '
                             '"renderer", "parser", "parameter", "message", or "requires"',
                             where=f"{where}:{lineno}", hint=f"the line reads {raw.strip()[:60]!r}")
        cmd = m.group(1).lower()
        rest = stripped[m.end():]
        name = cmd
        if cmd in ("parameter", "message"):
            pm = re.match(r"([A-Za-z0-9_]+)[ \t]+" if cmd == "parameter" else r"([A-Za-z]+)[ \t]+", rest)
            if not pm:
                raise InputError(f"{cmd.upper()} needs a name and a value", where=f"{where}:{lineno}")
            if cmd == "parameter":
                name = pm.group(1)
            elif pm.group(1) not in ROLES:
                raise InputError('message role must be one of "system", "user", or "assistant"',
                                 where=f"{where}:{lineno}")
            rest = rest[pm.end():]
        value, i = _value(rest, lines, i, where, lineno)
        if cmd == "message":
            value = f"{pm.group(1)}: {value}"
        mf.commands.append(Command("from" if cmd == "from" else name, value, lineno))
    if not any(c.name == "from" for c in mf.commands):
        raise InputError("no FROM line", where=where, hint="a Modelfile starts with FROM <model>")
    return mf


def _value(rest: str, lines: list[str], i: int, where: str, lineno: int) -> tuple[str, int]:
    """A command's value: to the end of the line, or a quoted ("..." / \"\"\"...\"\"\") span across lines."""
    s = rest.strip(" \t")
    for quote in ('"""', '"'):
        if s.startswith(quote):
            body = s[len(quote):]
            parts = [body]
            while not (parts[-1].rstrip(" \t").endswith(quote) and (len(parts) > 1 or len(body.rstrip(" \t")) >= len(quote))):
                if i >= len(lines):
                    raise InputError(f"unterminated {quote} string", where=f"{where}:{lineno}",
                                     hint=f"close it with {quote}")
                parts.append(lines[i])
                i += 1
            joined = "\n".join(parts).rstrip(" \t")
            return joined[: -len(quote)], i
    return s, i


# --------------------------------------------------------------------------- /api/show "parameters"

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"',
               "'": "'"}


def _go_unquote(text: str, where: str) -> str:
    """A string as Go's %#v prints it (strconv.Quote syntax)."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise InputError(f"parameters: {text!r} is not a quoted string", where=where)
    body, out, k = text[1:-1], [], 0
    while k < len(body):
        ch = body[k]
        if ch != "\\":
            out.append(ch)
            k += 1
            continue
        nxt = body[k + 1:k + 2]
        if nxt in _GO_ESCAPES:
            out.append(_GO_ESCAPES[nxt])
            k += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[k + 2:k + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise InputError(f"parameters: bad escape in {text!r}", where=where)
            out.append(chr(int(digits, 16)))
            k += 2 + width
        else:
            raise InputError(f"parameters: bad escape in {text!r}", where=where)
    return "".join(out)


def parse_show_parameters(text: str, where: str = "/api/show parameters") -> dict[str, Any]:
    """The `parameters` string of an /api/show answer → typed options (`stop` a list)."""
    out: dict[str, Any] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.match(r"\s*([A-Za-z0-9_]+)\s+(.*?)\s*$", line)
        if not m:
            raise InputError(f"parameters: cannot read {line!r}", where=f"{where}:{n}")
        name, raw = m.group(1), m.group(2)
        value_text = _go_unquote(raw, f"{where}:{n}") if raw.startswith('"') else raw
        if name in DEPRECATED:
            continue
        value = typed_value(name, value_text, f"{where}:{n}")
        if OPTION_TYPES[name] == "list":
            out.setdefault(name, []).extend(value)
        else:
            out[name] = value
    return out


def go_quote(text: str) -> str:
    """A string as %#v prints it (for recordings and the reverse direction)."""
    return json.dumps(text, ensure_ascii=False)


def render_modelfile(from_: str, parameters: dict[str, Any], *, system: str | None = None,
                     template: str | None = None, messages: list[dict[str, str]] | None = None) -> str:
    """A Modelfile Ollama's parser reads back to the same values (multi-line or padded text in \"\"\")."""
    def q(s: str) -> str:
        if "\n" in s or s != s.strip() or s.startswith('"'):
            if '"""' in s:
                raise InputError('text with """ cannot be written in a Modelfile')
            return f'"""{s}"""'
        return s

    lines = [f"FROM {from_}"]
    for key, value in parameters.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {q(str(v).lower() if isinstance(v, bool) else str(v))}")
    if template:
        lines.append(f"TEMPLATE {q(template)}")
    if system:
        lines.append(f"SYSTEM {q(system)}")
    for msg in messages or []:
        lines.append(f"MESSAGE {msg['role']} {q(msg['content'])}")
    return "\n".join(lines) + "\n"
