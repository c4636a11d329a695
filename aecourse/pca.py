"""Principal component analysis by SVD, and principal angles between subspaces.

PCA is the optimal LINEAR autoencoder: with the code ``z = (x - mean) @ V_d.T``
and the reconstruction ``x_hat = z @ V_d + mean`` (V_d: the top d right singular
vectors of the centred data), the squared error ``(1/m) sum_i ||x_hat_i - x_i||**2``
is as small as any rank-d linear map can make it, and equals the sum of the
discarded eigenvalues of the covariance ``(1/m) X_c.T @ X_c``. A linear
autoencoder trained by gradient descent finds the same subspace, but in a
different basis; ``principal_angles`` measures whether two bases span the same
subspace (all angles 0).

Convention: eigenvalues use the 1/m (maximum-likelihood) covariance, so that
they are directly the reconstruction errors above. scikit-learn's
``PCA.explained_variance_`` uses 1/(m - 1): theirs = ours * m / (m - 1).
"""

from __future__ import annotations

import numbers

import numpy as np

from aecourse._validate import as_numpy, describe


class NotFittedError(ValueError, AttributeError):
    """Raised when a PCA is used before ``fit``; like ``sklearn.exceptions.NotFittedError``."""


class PCA:
    """PCA by the singular value decomposition of the centred data (scikit-learn conventions).

    ``__init__`` only stores the settings; ``fit`` computes the attributes that end
    in ``_`` and returns ``self``. Each component's sign is fixed so that its
    largest-magnitude entry is positive, so results do not depend on the SVD routine.

    Parameters
    ----------
    n_components : int
        d, the code size: 1 <= d <= min(m, n) for the X given to ``fit``.
    random_state : None or int
        Accepted for symmetry with scikit-learn's API; unused, because the exact
        SVD involves no randomness.

    Attributes
    ----------
    mean_ : ndarray, shape (n,)
        The mean of the training data, subtracted before projecting.
    components_ : ndarray, shape (d, n)
        Orthonormal rows: the top d principal directions, by decreasing variance.
    explained_variance_ : ndarray, shape (d,)
        Variance of the data along each component (1/m convention).
    explained_variance_ratio_ : ndarray, shape (d,)
        ``explained_variance_`` over the total variance.
    singular_values_ : ndarray, shape (d,)
        The top d singular values of the centred data; ``eigenvalue = s**2 / m``.
    eigenvalues_ : ndarray, shape (min(m, n),)
        All eigenvalues of the covariance ``(1/m) X_c.T @ X_c`` that can be nonzero, descending.
    discarded_variance_ : float
        Sum of the eigenvalues not kept: the mean squared reconstruction error
        ``(1/m) sum_i ||x_hat_i - x_i||**2`` on the training data.
    n_features_in_ : int
        n, the number of features seen by ``fit``.

    Chapter: 2 (The link with PCA).
    """

    def __init__(self, n_components, *, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X):
        """Compute the principal components of X (m, n). Returns self."""
        X = as_numpy(X, "X", ndim=2)
        m, n = X.shape
        d = self.n_components
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 1 <= d <= min(m, n):
            raise ValueError(f"n_components must be an integer between 1 and min(m, n) = "
                             f"{min(m, n)} for X with m={m} rows and n={n} columns; "
                             f"got {describe(d)}.")
        # book: begin PCA.fit
        X = X.astype(np.float64)
        self.mean_ = X.mean(axis=0)
        _, s, Vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        # Fix the sign: the largest-magnitude entry of each direction becomes positive.
        largest = Vt[np.arange(len(Vt)), np.abs(Vt).argmax(axis=1)]
        Vt = Vt * np.where(largest < 0, -1.0, 1.0)[:, None]
        self.eigenvalues_ = s ** 2 / m
        self.components_ = Vt[:d]
        self.singular_values_ = s[:d]
        self.explained_variance_ = self.eigenvalues_[:d]
        # book: end PCA.fit
        total = self.eigenvalues_.sum()
        self.explained_variance_ratio_ = self.explained_variance_ / (total if total > 0 else 1.0)
        self.discarded_variance_ = float(self.eigenvalues_[d:].sum())
        self.n_features_in_ = n
        return self

    def _check_fitted(self, method):
        if not hasattr(self, "components_"):
            raise NotFittedError(f"This PCA instance is not fitted yet: call fit(X) before "
                                 f"{method}.")

    def transform(self, X):
        """Codes ``Z = (X - mean_) @ components_.T``, shape (m, d), in X's float dtype."""
        self._check_fitted("transform")
        X = as_numpy(X, "X", ndim=2, n_features=self.n_features_in_)
        return ((X - self.mean_) @ self.components_.T).astype(X.dtype, copy=False)

    def inverse_transform(self, Z):
        """Reconstructions ``X_hat = Z @ components_ + mean_``, shape (m, n), in Z's float dtype."""
        self._check_fitted("inverse_transform")
        Z = as_numpy(Z, "Z", ndim=2, n_features=len(self.components_))
        return (Z @ self.components_ + self.mean_).astype(Z.dtype, copy=False)

    def fit_transform(self, X):
        """``fit(X)`` and return ``transform(X)``, shape (m, d)."""
        return self.fit(X).transform(X)


def _orthonormal_basis(A, name):
    """Q (n, k) with orthonormal columns spanning the columns of A (n, k), by QR."""
    n, k = A.shape
    if not 1 <= k <= n:
        raise ValueError(f"{name} must have between 1 and n={n} columns (a basis of a subspace of "
                         f"R^n); got {describe(A)}.")
    Q, R = np.linalg.qr(A.astype(np.float64))
    diag = np.abs(np.diag(R))
    if diag.min() <= 1e-10 * max(diag.max(), 1e-300):
        raise ValueError(f"the columns of {name} must be linearly independent (a basis of the "
                         f"subspace); got {describe(A)} of rank < {A.shape[1]}.")
    return Q


def principal_angles(A, B):
    """Principal angles between the subspaces spanned by the columns of A and of B.

    With orthonormal bases Q_A, Q_B (by QR), the singular values of
    ``Q_A.T @ Q_B`` are the cosines of the angles; all angles are 0 exactly when
    one subspace contains the other, whatever bases were used. Small angles
    come from ``arccos`` and are accurate to about 1e-8.

    Parameters
    ----------
    A : ndarray or Tensor, shape (n, k1), linearly independent columns
    B : ndarray or Tensor, shape (n, k2), linearly independent columns

    Returns
    -------
    angles : ndarray, shape (min(k1, k2),)
        In radians, in [0, pi/2], ascending.

    Chapter: 2 (The link with PCA).
    """
    A = as_numpy(A, "A", ndim=2)
    B = as_numpy(B, "B", ndim=2)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows n (the ambient dimension); "
                         f"got A with shape {A.shape} and B with shape {B.shape}.")
    cosines = np.linalg.svd(_orthonormal_basis(A, "A").T @ _orthonormal_basis(B, "B"),
                            compute_uv=False)
    return np.sort(np.arccos(np.clip(cosines, -1.0, 1.0)))
