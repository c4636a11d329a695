"""Gradient checking: centred finite differences and the relative error.

A hand-written backward pass is only trusted after it agrees with a numerical
derivative. For a scalar function ``L`` of an array ``x``, each entry is nudged
by ``+-eps`` and

    dL/dx_k  ~  (L(x + eps e_k) - L(x - eps e_k)) / (2 eps),

whose error is of order ``eps**2`` (one-sided differences only reach ``eps``).
In float64 with ``eps = 1e-6`` a correct gradient agrees to about 1e-7 or better
in relative error (``rel_error``); a bug gives something near 1.
"""

from __future__ import annotations

import numpy as np

from aecourse._validate import check_array, describe


def numerical_gradient(fun, x, *, eps: float = 1e-6):
    """Centred-difference gradient of a scalar function at the array ``x``.

    Each entry of ``x`` is changed IN PLACE to ``x_k + eps`` and ``x_k - eps``,
    ``fun(x)`` is evaluated at both, and ``x_k`` is restored, so ``fun`` may also
    read ``x`` through a closure (e.g. one entry of a parameter dictionary).
    It costs ``2 * x.size`` calls of ``fun``: use small arrays.

    Parameters
    ----------
    fun : callable
        ``fun(x)`` returns a scalar (float, 0-d array or 1-element tensor).
    x : ndarray of float64, any shape
        The point; float64 so that rounding (about 1e-16) stays far below ``eps**2``.
    eps : float
        The step, > 0.

    Returns
    -------
    grad : ndarray of float64, same shape as ``x``

    Chapter: 5 (Backpropagation).
    """
    if not callable(fun):
        raise TypeError(f"fun must be a callable returning a scalar; got {describe(fun)}.")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a NumPy array (it is changed in place); got {describe(x)}.")
    check_array(x, "x")
    if x.dtype != np.float64:
        raise TypeError(f"x must be float64: in {x.dtype} rounding swamps the finite differences; "
                        f"got {describe(x)}. Convert it first, e.g. x.astype(np.float64).")
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps!r}.")
    # book: begin numerical_gradient
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        old = x[k]
        x[k] = old + eps
        up = float(fun(x))
        x[k] = old - eps
        down = float(fun(x))
        x[k] = old  # restore before anything else can see the change
        grad[k] = (up - down) / (2 * eps)
    return grad
    # book: end numerical_gradient


def rel_error(a, b) -> float:
    """Relative error ``max_k |a_k - b_k| / max(1e-12, max_k (|a_k| + |b_k|))``.

    The largest difference, measured against the size of the arrays' largest
    entries. Symmetric in ``a`` and ``b``, 0 when they are equal (also when both
    are 0), 1 when ``b = -a``, and scale-free, so one threshold (1e-6 in float64)
    fits gradients of any size. Dividing each entry by its OWN size instead
    (CS231n's version) flags correct gradients: an entry that is nearly 0 keeps
    the finite-difference noise of about 1e-9 and its ratio can reach 1e-4.

    Parameters
    ----------
    a, b : array_like (NumPy, torch or Python numbers), same shape

    Returns
    -------
    float

    Chapter: 5 (Backpropagation).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}.")
    if a.size == 0:
        return 0.0
    # book: begin rel_error
    return float(np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b))))
    # book: end rel_error


def check_gradients(fun, params, grads, *, eps: float = 1e-6) -> dict:
    """Compare analytic gradients with centred differences, one parameter array at a time.

    Parameters
    ----------
    fun : callable
        ``fun(params)`` returns the scalar loss; it is called with the same
        dictionary whose arrays are perturbed in place (and restored).
    params : dict of str -> ndarray of float64
        The point, e.g. ``{"W": (d, n), "b": (d,), "W_star": (n, d), "c": (n,)}``.
    grads : dict of str -> ndarray
        The analytic gradients, same keys and shapes as ``params``.
    eps : float
        Finite-difference step.

    Returns
    -------
    dict of str -> float
        ``rel_error`` of each parameter's gradient; below about 1e-6 means correct.

    Chapter: 5 (Backpropagation).
    """
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise TypeError(f"params and grads must be dicts of arrays; got {type(params).__name__} "
                        f"and {type(grads).__name__}.")
    if set(params) != set(grads):
        raise ValueError(f"params and grads must have the same keys; got {sorted(params)} "
                         f"and {sorted(grads)}.")
    errors = {}
    for name, value in params.items():
        if np.shape(grads[name]) != value.shape:
            raise ValueError(f"grads[{name!r}] must have the shape of params[{name!r}], "
                             f"{value.shape}; got {np.shape(grads[name])}.")
        numeric = numerical_gradient(lambda _: fun(params), value, eps=eps)
        errors[name] = rel_error(grads[name], numeric)
    return errors
