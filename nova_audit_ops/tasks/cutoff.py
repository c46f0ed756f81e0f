"""Cut-offs of the archive and purge tasks: from the run's data interval, never now()."""

from __future__ import annotations

import datetime as dt

from nova_audit_ops.errors import ConfigError
from nova_audit_ops.knobs import Knob


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


def cutoff(reference_time: dt.datetime, retention_days: int, before: str | None) -> dt.datetime:
    """An explicit `before` wins; otherwise the data interval's end minus the retention.

    Returned naive in UTC, as Nova stores its timestamps.
    """
    if before:
        try:
            moment = parse_before(before)
        except ValueError as exc:
            raise ConfigError(f"before = {before!r} is invalid: {exc}") from None
    else:
        moment = reference_time.astimezone(dt.timezone.utc) - dt.timedelta(days=retention_days)
    return moment.replace(tzinfo=None)


def before_knob(what: str) -> Knob:
    return Knob(
        "before",
        "str",
        None,
        f"{what} rows deleted before this ISO date-time (UTC); overrides retention_days.",
        check=check_before,
    )


def retention_knob(default: int, what: str) -> Knob:
    return Knob(
        "retention_days",
        "int",
        default,
        f"{what} rows deleted more than this many days before the end of the run's data interval.",
        minimum=0,
        maximum=36500,
    )
