"""Anomaly detection by reconstruction error, and the area under the ROC curve.

A model trained to reconstruct normal data reconstructs unusual inputs badly, so the
reconstruction error of an example is an anomaly score: the larger, the more unusual.
A threshold on the score turns it into a detector; the ROC curve shows every threshold
at once, and the area under it (AUROC) is the probability that a random anomaly scores
higher than a random normal example (0.5: chance; 1: perfect).
"""

from __future__ import annotations

import numpy as np
import torch

from aecourse._validate import as_numpy, check_array, describe

__all__ = ["reconstruction_error", "auroc"]


def reconstruction_error(reconstruct, X) -> np.ndarray:
    """Anomaly scores: the squared reconstruction error of each example, ``||x_hat_i - x_i||**2``.

    Parameters
    ----------
    reconstruct : callable
        Maps X (m, n) to reconstructions (m, n): a trained model (called on a tensor,
        in evaluation mode, without gradients) or any function of a NumPy array, e.g.
        ``lambda X: pca.inverse_transform(pca.transform(X))``.
    X : ndarray or Tensor, shape (m, n)
        The examples to score.

    Returns
    -------
    scores : ndarray, shape (m,), float64
        One score per example (summed over features, like ``losses.squared_error``).

    Chapter: 9 (From autoencoders to generative models).
    """
    if not callable(reconstruct):
        raise TypeError(f"reconstruct must be a callable such as a trained model; got "
                        f"{describe(reconstruct)}.")
    check_array(X, "X", ndim=2)
    if isinstance(reconstruct, torch.nn.Module):
        reference = next(reconstruct.parameters())
        was_training = reconstruct.training
        reconstruct.eval()
        try:
            with torch.no_grad():
                X_hat = reconstruct(torch.as_tensor(X, dtype=reference.dtype,
                                                    device=reference.device))
        finally:
            reconstruct.train(was_training)
    else:
        X_hat = reconstruct(X)
    X_hat = np.asarray(as_numpy(X_hat, "reconstruct(X)", ndim=2), dtype=np.float64)
    X = np.asarray(as_numpy(X, "X"), dtype=np.float64)
    if X_hat.shape != X.shape:
        raise ValueError(f"reconstruct(X) must have the shape of X {X.shape}; got {X_hat.shape}.")
    # book: begin reconstruction_error
    return ((X_hat - X) ** 2).sum(axis=1)
    # book: end reconstruction_error


def auroc(scores, is_anomaly) -> float:
    """Area under the ROC curve of ``scores`` for the labels ``is_anomaly``.

    Computed as the Mann-Whitney statistic: over all pairs (anomaly a, normal e), the
    fraction with ``score_a > score_e``, ties counting one half. Sorting makes it
    O(m log m): with ranks r (average ranks for ties), ``AUROC = (sum of the
    anomalies' ranks - p (p + 1) / 2) / (p q)`` for p anomalies and q normal examples.

    Parameters
    ----------
    scores : array-like, shape (m,)
        Anomaly scores (larger = more anomalous).
    is_anomaly : array-like of bool or 0/1, shape (m,)
        The truth; both classes must occur.

    Returns
    -------
    float in [0, 1]

    Chapter: 9 (From autoencoders to generative models).
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(is_anomaly)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"scores and is_anomaly must be 1-D of the same length; got shapes "
                         f"{scores.shape} and {labels.shape}.")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("is_anomaly must hold booleans or 0/1.")
    labels = labels.astype(bool)
    p, q = int(labels.sum()), int((~labels).sum())
    if p == 0 or q == 0:
        raise ValueError(f"both classes must occur; got {p} anomalies and {q} normal examples.")
    if not np.isfinite(scores).all():
        raise ValueError("scores contains NaN or infinite values.")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - p * (p + 1) / 2) / (p * q))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..m of ``values``, tied values sharing the average of their ranks."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]  # first of each tie group
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(values)] - 1
    mean_rank = (first + last) / 2 + 1                             # ranks are 1-based
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks
