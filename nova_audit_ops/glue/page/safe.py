"""No secret on the page: known secrets and any password inside a URL are masked.

Reports are scrubbed before they reach XCom, but the api-server has not seen
the passwords the workers registered, so a URL's password is masked by shape too.
"""

from __future__ import annotations

import re
from typing import Any

from nova_audit_ops.clients import secrets

URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]+:)[^\s@/]+@")


def text(value: str) -> str:
    """The text with every known secret and URL password replaced by the mask."""
    return URL_PASSWORD.sub(rf"\g<head>{secrets.MASK}@", secrets.scrub(value))


def tree(value: Any) -> Any:
    """text() applied to every string in a JSON-like value."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tree(v) for v in value]
    return value
