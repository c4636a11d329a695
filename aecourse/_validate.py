"""Input checks shared by every public function of ``aecourse``.

Students are the users of this library, so a wrong argument must stop at the
public boundary with a message that names the argument, says what was expected
and shows what came, instead of a stack trace from deep inside NumPy or torch.
Each check accepts NumPy arrays and torch tensors alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers

import numpy as np
import torch

_TRUSTED = contextvars.ContextVar("aecourse_trusted", default=False)


@contextlib.contextmanager
def trusted(value: bool = True):
    """Skip (``value=True``) or restore (``value=False``) the array checks inside a block.

    ``train.fit`` validates all of its data once, vectorised, on entry and then runs
    the library's own ``encode``, ``decode`` and losses inside ``trusted()``: their
    per-batch checks would otherwise cost about a tenth of the training time. The
    user's callbacks (``penalty``, ``loss``, ``corrupt``) run inside
    ``trusted(False)``, so the library functions they call check their input again.
    """
    token = _TRUSTED.set(bool(value))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def describe(x) -> str:
    """A short description of ``x`` for error messages: type, shape and dtype."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        kind = "a tensor" if isinstance(x, torch.Tensor) else "an array"
        return f"{kind} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def check_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None,
                n_features: int | None = None, finite: bool = True):
    """Check that ``x`` is a floating NumPy array or torch tensor and return it.

    Parameters
    ----------
    x : ndarray or Tensor
        The value to check.
    name : str
        The argument's name, used in the error message.
    ndim : int or tuple of int, optional
        The allowed number of dimensions.
    n_features : int, optional
        The required size of the last axis.
    finite : bool
        Reject NaN and infinity.

    Raises
    ------
    TypeError
        When ``x`` is not an array/tensor or its dtype is not floating point.
    ValueError
        When the shape is wrong or ``x`` holds NaN or infinity.
    """
    if _TRUSTED.get():
        return x
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a NumPy array or a torch tensor of floats; "
                        f"got {describe(x)}.")
    is_float = (x.is_floating_point() if isinstance(x, torch.Tensor)
                else np.issubdtype(x.dtype, np.floating))
    if not is_float:
        raise TypeError(f"{name} must hold floating-point numbers (e.g. float32); got "
                        f"{describe(x)}. Convert it first, e.g. X.astype(np.float32).")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            hint = " (one example per row: shape (m, n))" if 2 in allowed else ""
            raise ValueError(f"{name} must be {want}{hint}; got {describe(x)}.")
    if n_features is not None and x.shape[-1] != n_features:
        raise ValueError(f"{name} must have {n_features} features in its last axis; "
                         f"got {describe(x)}.")
    if finite:
        # Fast path: a finite sum implies every entry is finite (NaN and inf propagate);
        # this runs on every training batch, so it must cost microseconds.
        x_ = x.detach() if isinstance(x, torch.Tensor) else x
        ok = math.isfinite(float(x_.sum())) or (
            bool(torch.isfinite(x_).all()) if isinstance(x_, torch.Tensor)
            else bool(np.isfinite(x_).all()))
        if not ok:
            raise ValueError(f"{name} contains NaN or infinite values; got {describe(x)}.")
    return x


def check_range(x, name: str, low: float, high: float):
    """Check that every entry of ``x`` lies in the closed interval ``[low, high]``."""
    if _TRUSTED.get():
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach()
    lo, hi = float(x.min()), float(x.max())
    if lo < low or hi > high:
        raise ValueError(f"{name} must lie in [{low}, {high}]; got values in "
                         f"[{lo:.4g}, {hi:.4g}].")
    return x


def check_same_shape(a, a_name: str, b, b_name: str) -> None:
    """Check that two arrays have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{a_name} and {b_name} must have the same shape; got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}.")


def check_open_unit(value, name: str) -> float:
    """Check that a scalar lies strictly between 0 and 1 (e.g. the sparsity target rho)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number strictly between 0 and 1; got {describe(value)}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1; got {value!r}.")
    return float(value)


def check_fraction(value, name: str) -> float:
    """Check that a scalar lies in the closed interval [0, 1] (e.g. a corruption rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1]; got {describe(value)}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}.")
    return float(value)


def check_nonnegative(value, name: str) -> float:
    """Check that a scalar is a real number >= 0 (e.g. a penalty weight)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0; got {describe(value)}.")
    if not float(value) >= 0.0:
        raise ValueError(f"{name} must be >= 0; got {value!r}.")
    return float(value)


def check_positive(value, name: str) -> float:
    """Check that a scalar is a real number > 0 (e.g. a learning rate)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number > 0; got {describe(value)}.")
    if not float(value) > 0.0:
        raise ValueError(f"{name} must be > 0; got {value!r}.")
    return float(value)


def check_positive_int(value, name: str, *, maximum: int | None = None) -> int:
    """Check that ``value`` is an integer >= 1 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {describe(value)}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}.")
    return int(value)


def check_keys(value, name: str, keys) -> dict:
    """Check that ``value`` is a dict with (at least) the given keys, e.g. a parameter dict."""
    if not isinstance(value, dict) or set(keys) - set(value):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{name} must be a dict with keys {list(keys)}; got {got}.")
    return value


def check_choice(value, name: str, choices) -> str:
    """Check that ``value`` is one of ``choices`` (e.g. an activation name)."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value


def as_numpy(x, name: str, **checks) -> np.ndarray:
    """Check ``x`` with ``check_array(x, name, **checks)`` and return it as a NumPy array.

    A tensor is detached and copied to the CPU; a NumPy array is returned as it is.
    """
    check_array(x, name, **checks)
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def check_random_state(random_state, *, kind: str = "numpy", for_what: str = ""):
    """The one seeding helper: a LOCAL generator, never the global random state.

    Parameters
    ----------
    random_state : int, None or a generator
        An int seed, None (fresh entropy from the operating system), or a generator
        of the requested kind, which is returned as it is (so its state advances).
    kind : {"numpy", "torch"}
        Return a ``numpy.random.Generator`` or a ``torch.Generator``.
    for_what : str
        Appended to the error message, e.g. " for a NumPy X".

    Returns
    -------
    numpy.random.Generator or torch.Generator
    """
    own = np.random.Generator if kind == "numpy" else torch.Generator
    if isinstance(random_state, own):
        return random_state
    if random_state is not None and (isinstance(random_state, bool)
                                     or not isinstance(random_state, numbers.Integral)):
        label = "a numpy Generator" if kind == "numpy" else "a torch.Generator"
        raise TypeError(f"random_state must be an int, None or {label}{for_what}; "
                        f"got {describe(random_state)}.")
    if kind == "numpy":
        return np.random.default_rng(random_state)
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
    else:
        generator.manual_seed(int(random_state))
    return generator
