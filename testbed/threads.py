"""Run a few blocking jobs at once (database copies, seeding steps), errors kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def in_parallel(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads; their results in order, or the first error."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(index: int, job: Callable[[], Any]) -> None:
        try:
            results[index] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
