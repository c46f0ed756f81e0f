"""Validators of the values operators write: schedules, windows, days, time zones, dates,
dotted paths and JSON objects.

Each returns None for a good value or a short text saying what is wrong; the
knobs turn that text into a ConfigError naming the setting.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_CRON_PRESETS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@once", "none"}
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?]+$")
_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def check_schedule(value: str | None) -> str | None:
    if value is None or value.lower() in _CRON_PRESETS:
        return None
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        return "must be a 5-field cron expression, a preset such as @hourly, or none"
    return None


def check_window(value: str | None) -> str | None:
    if not value:
        return None
    match = _WINDOW.match(value)
    if not match:
        return "must look like 01:00-05:00 (start-end, 24 h clock)"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        return "hours must be 0-23 (24:00 allowed as an end) and minutes 0-59"
    if (h1, m1) == (h2, m2):
        return "start and end must differ"
    return None


def check_days(value: list[str]) -> str | None:
    bad = [d for d in value if d.lower() not in DAYS and d != "*"]
    return f"unknown day(s) {', '.join(bad)}: use {', '.join(DAYS)}" if bad else None


def check_timezone(value: str | None) -> str | None:
    try:
        ZoneInfo(value or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return "unknown time zone: use an IANA name such as UTC or Europe/Berlin"
    return None


def check_before(value: str | None) -> str | None:
    """A `before` value must be an ISO date or date-time."""
    if not value:
        return None
    try:
        parse_before(value)
    except ValueError:
        return "must be an ISO date or date-time such as 2026-01-31 or 2026-01-31T12:00:00Z"
    return None


def parse_before(value: str) -> dt.datetime:
    """ISO date or date-time; naive values are UTC."""
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


_DOTTED_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def check_dotted_path(value: str | None) -> str | None:
    if not value or _DOTTED_PATH.match(value):
        return None
    return "must be a dotted Python path such as mypackage.alerts.MyNotifier"


def check_json_object(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"must be a JSON object: {exc}"
    return None if isinstance(parsed, dict) else "must be a JSON object ({...})"


def check_urls(value: list[str] | None) -> str | None:
    """Every item a database URL (`dialect+driver://user:password@host:port/`); never
    quotes the value, which holds passwords."""
    for position, url in enumerate(value or [], start=1):
        if not re.match(r"^[A-Za-z][A-Za-z0-9+]*://[^/]*@?[^/]+", url):
            return (
                f"item {position} is not a SQLAlchemy URL: write "
                "mysql+pymysql://user:password@host:3306/ for each replica"
            )
    return None
