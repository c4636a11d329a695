"""Wall-clock deadlines in the grader's own (trusted) code: setup and test cells, callbacks.

:func:`alarm` raises :class:`Overrun` in the main thread (``signal.setitimer``); nested
deadlines keep the earliest. The batch's per-submission kill is the backstop.
"""

from __future__ import annotations

import contextlib
import signal
import time

__all__ = ["Overrun", "alarm"]


class Overrun(BaseException):
    """A wall-clock deadline passed in the grader's own (trusted) code."""


@contextlib.contextmanager
def alarm(seconds: float, what: str):
    """Raise :class:`Overrun` in the main thread after ``seconds`` (nests: the earliest wins)."""
    def fire(signum, frame):
        raise Overrun(f"{what} did not finish within {seconds:g} s")

    outer_left, started = signal.getitimer(signal.ITIMER_REAL)[0], time.monotonic()
    previous = signal.signal(signal.SIGALRM, fire if not outer_left or seconds < outer_left
                             else signal.getsignal(signal.SIGALRM))
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left or seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL,
                             max(1e-3, outer_left - (time.monotonic() - started)))
