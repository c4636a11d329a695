"""Arguments a student's function changes in place, seen by the test as in one kernel.

Arguments reach the worker by value (:mod:`aecourse.grader.protocol`). Under plain nbgrader a
function that changes an array it was given changes the test's own array; so here the worker
notes the NumPy arrays among a call's arguments that the call changed (:func:`watch`,
:func:`changed`), sends them back with its answer (size-limited like every answer), and the
grader copies them into the very arrays the test passed (:func:`copy_back`), only when shape and
dtype are unchanged. A student's function gets exactly the power it has in one kernel (changing
the arguments it was given) and nothing more.
"""

from __future__ import annotations

import hashlib

import numpy as np

from aecourse.grader.protocol import ProtocolError, decode

__all__ = ["watch", "changed", "copy_back", "NOT_COPIED"]

NOT_COPIED = ("your code changed an array a test passed it in a way that cannot be copied back "
              "(its shape or type, or a read-only array): the test does not see that change")


def _fingerprint(array: np.ndarray) -> tuple:
    data = np.ascontiguousarray(array).view(np.uint8) if array.size else b""
    return array.shape, array.dtype.str, hashlib.blake2b(data).digest()


def watch(args, kwargs: dict) -> list:
    """Worker side, before a call: ``[place, array, fingerprint]`` of each array argument
    (``place`` is ``["a", position]`` or ``["k", keyword]``)."""
    places = [(["a", i], a) for i, a in enumerate(args)] + [(["k", k], a)
                                                            for k, a in kwargs.items()]
    return [[place, a, _fingerprint(a)] for place, a in places
            if type(a) is np.ndarray and not a.dtype.hasobject]


def changed(watched: list) -> list:
    """Worker side, after the call: ``[place, array]`` of the arrays it changed."""
    return [[place, a] for place, a, before in watched if _fingerprint(a) != before]


def copy_back(message: dict, changed, payloads: list, make_handle) -> list[str]:
    """Grader side: copy each ``[place, value]`` of ``changed`` (the worker's answer to the
    call ``message``) into the argument the test passed; notes on what could not be copied.

    Anything malformed (a place the call did not have, a value that does not decode) is the
    student's error (:class:`~aecourse.grader.session.StudentError` via ``ProtocolError``)."""
    notes = []
    try:
        for (kind, key), tree in changed:
            passed = message["args"][int(key)] if kind == "a" else message["kwargs"][str(key)]
            value = decode(tree, payloads, make_handle)
            if isinstance(passed, np.ndarray) and type(value) is np.ndarray and \
                    value.shape == passed.shape and value.dtype == passed.dtype and \
                    passed.flags.writeable:
                np.copyto(passed, value)
            elif NOT_COPIED not in notes:
                notes.append(NOT_COPIED)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ProtocolError(f"the arguments your code changed ({type(error).__name__})") \
            from None
    return notes
