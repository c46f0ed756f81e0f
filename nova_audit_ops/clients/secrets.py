"""Known secrets and their scrubbing, so no password reaches a log, XCom or error.

Every password found in a database URL is registered here; the Airflow glue
adds a listener that forwards each one to Airflow's own secrets masker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_listeners: list[Callable[[str], None]] = []


def register(secret: str | None) -> None:
    """Remember a secret so that scrub() hides it and listeners learn of it."""
    if not secret or len(secret) < 3:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        listeners = list(_listeners)
    for listener in listeners:
        listener(secret)


def add_listener(listener: Callable[[str], None]) -> None:
    """Call listener for every secret, those known now and those found later."""
    with _lock:
        _listeners.append(listener)
        known = list(_secrets)
    for secret in known:
        listener(secret)


def scrub(text: str) -> str:
    """Replace every known secret in text with the mask."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
