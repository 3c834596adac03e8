"""Names → DNS labels: a service's name may hold any characters; resource names may not.

Kubernetes Service names must be RFC 1035 labels (lower-case letters, digits and '-', starting with
a letter, at most 63 characters — https://kubernetes.io/docs/concepts/overview/working-with-objects/names/).
systemd unit names and compose project names accept a subset of that too, so one slug serves all.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Leave room for suffixes such as "-secrets", "-models", "-leader" within the 63-character limit.
MAX_SLUG = 40


def slugify(name: str) -> str:
    """A stable RFC 1035 label for `name`.

    When the conversion loses information (other characters, case, length), a short hash of the
    original name is appended so that two different names never share a slug.
    """
    ascii_form = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^a-z0-9]+", "-", ascii_form.lower()).strip("-")
    if base and not base[0].isalpha():
        base = "s-" + base
    if base == name and len(base) <= MAX_SLUG:
        return base
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    base = base[: MAX_SLUG - len(digest) - 1].rstrip("-") or "svc"
    return f"{base}-{digest}"


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(text: str) -> str:
    """A Kubernetes label value (≤ 63 of [A-Za-z0-9-_.], alphanumeric at both ends) for `text`."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    assert _LABEL_VALUE.match(value)
    return value
