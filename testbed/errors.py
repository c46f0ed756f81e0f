"""The one exception the test bed raises for problems a person has to fix."""

from __future__ import annotations


class TestBedError(RuntimeError):
    """A test bed could not be built, used or removed; the message says why and what to do."""

    __test__ = False  # not a pytest test class, despite the name
