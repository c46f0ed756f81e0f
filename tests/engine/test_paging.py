"""The walk over an in-memory list, in key order after a marker."""

from __future__ import annotations

from nova_audit_ops.engine.paging import sorted_pages


def test_sorted_pages_start_after_the_marker_and_say_when_more_follow() -> None:
    pages = list(sorted_pages(["e", "a", "d", "c", "b"], str, 2, "a"))
    assert [p.rows for p in pages] == [["b", "c"], ["d", "e"]]
    assert [p.full for p in pages] == [True, False]
    assert [p.marker for p in pages] == [{"after": "c"}, {"after": "e"}]


def test_sorted_pages_start_over_when_nothing_follows_the_marker() -> None:
    assert [p.rows for p in sorted_pages(["b", "a"], str, 5, "z")] == [["a", "b"]]
    assert list(sorted_pages([], str, 5, "")) == []
