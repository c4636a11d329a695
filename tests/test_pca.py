"""aecourse.pca against scikit-learn's PCA and SciPy's subspace_angles."""

import numpy as np
import pytest
import scipy.linalg
import sklearn.decomposition
import torch

from aecourse.pca import PCA, NotFittedError, principal_angles


def correlated_data(m=60, n=8, seed=0):
    """Gaussian data with distinct variances (well-separated eigenvalues) and a nonzero mean."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n)) @ rng.normal(size=(n, n)) + rng.normal(size=n)


@pytest.mark.parametrize("m, n, d", [(60, 8, 3), (5, 9, 2), (40, 6, 6)])
def test_pca_spans_sklearns_subspace_with_its_variances(m, n, d):
    X = correlated_data(m, n)
    ours = PCA(d).fit(X)
    theirs = sklearn.decomposition.PCA(d, svd_solver="full").fit(X)
    angles = scipy.linalg.subspace_angles(ours.components_.T, theirs.components_.T)
    assert angles.max() < 1e-6
    # the same directions one by one (distinct eigenvalues), up to sign
    np.testing.assert_allclose(np.abs(np.sum(ours.components_ * theirs.components_, axis=1)), 1.0,
                               atol=1e-8)
    # scikit-learn divides by m - 1, we by m (the maximum-likelihood covariance)
    np.testing.assert_allclose(ours.explained_variance_ * m / (m - 1), theirs.explained_variance_,
                               rtol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_,
                               rtol=1e-9)
    np.testing.assert_allclose(ours.singular_values_, theirs.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12, atol=1e-12)


def test_transform_and_inverse_transform_agree_with_sklearn_up_to_component_signs():
    X = correlated_data()
    ours = PCA(3).fit(X)
    theirs = sklearn.decomposition.PCA(3, svd_solver="full").fit(X)
    signs = np.sign(np.sum(ours.components_ * theirs.components_, axis=1))
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X) * signs, atol=1e-9)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)),
                               theirs.inverse_transform(theirs.transform(X)), atol=1e-9)
    np.testing.assert_allclose(PCA(3).fit_transform(X), ours.transform(X), atol=1e-12)


def test_reconstruction_error_equals_discarded_variance():
    m = 50
    X = correlated_data(m, 7, seed=1)
    all_eigenvalues = sklearn.decomposition.PCA(svd_solver="full").fit(X).explained_variance_
    for d in range(1, 8):
        pca = PCA(d).fit(X)
        X_hat = pca.inverse_transform(pca.transform(X))
        error = np.sum((X_hat - X) ** 2) / m                   # (1/m) sum_i ||x_hat_i - x_i||^2
        assert error == pytest.approx(pca.discarded_variance_, rel=1e-9, abs=1e-12)
        expected = all_eigenvalues[d:].sum() * (m - 1) / m     # sklearn's, in the 1/m convention
        assert pca.discarded_variance_ == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert pca.eigenvalues_.shape == (7,)
    assert np.all(np.diff(pca.eigenvalues_) <= 0)


def test_components_are_orthonormal_with_a_deterministic_sign():
    X = correlated_data(80, 10, seed=2)
    pca = PCA(4).fit(X)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(4), atol=1e-12)
    C = pca.components_
    assert np.all(C[np.arange(4), np.abs(C).argmax(axis=1)] > 0)   # largest entry positive
    shuffled = PCA(4).fit(X[np.random.default_rng(0).permutation(80)])  # same data, other SVD input
    np.testing.assert_allclose(shuffled.components_, C, atol=1e-10)
    flipped = PCA(4).fit(-X)                                       # same subspace, opposite data
    np.testing.assert_allclose(flipped.components_, C, atol=1e-10)


def test_estimator_conventions_init_stores_fit_returns_self_dtype_kept():
    pca = PCA(2, random_state=5)
    assert vars(pca) == {"n_components": 2, "random_state": 5}     # __init__ only stores
    X = correlated_data().astype(np.float32)
    assert pca.fit(X) is pca
    assert pca.transform(X).dtype == np.float32
    assert pca.n_features_in_ == 8
    np.testing.assert_allclose(PCA(2).fit(torch.from_numpy(X)).components_, pca.components_)


def test_transform_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        PCA(2).transform(correlated_data())
    with pytest.raises(ValueError):                    # like sklearn's, it is a ValueError too
        PCA(2).inverse_transform(np.zeros((3, 2)))


@pytest.mark.parametrize("bad", [0, -1, 9, 61, 2.5, True])
def test_bad_n_components_raises_value_error_naming_it(bad):
    X = correlated_data(60, 8)
    with pytest.raises(ValueError, match=r"n_components must be an integer between 1 and "
                                         r"min\(m, n\) = 8.*got"):
        PCA(bad).fit(X)


def test_transform_rejects_the_wrong_number_of_features():
    pca = PCA(2).fit(correlated_data(60, 8))
    with pytest.raises(ValueError, match="X must have 8 features"):
        pca.transform(correlated_data(60, 7))


@pytest.mark.parametrize("k1, k2", [(3, 4), (2, 2), (5, 1)])
def test_principal_angles_match_scipy_on_random_subspaces(k1, k2):
    rng = np.random.default_rng(k1 * 10 + k2)
    A, B = rng.normal(size=(9, k1)), rng.normal(size=(9, k2))
    angles = principal_angles(A, B)
    assert angles.shape == (min(k1, k2),)
    assert np.all(np.diff(angles) >= 0)                              # ascending
    np.testing.assert_allclose(angles, np.sort(scipy.linalg.subspace_angles(A, B)), atol=1e-10)


def test_principal_angles_of_a_tilted_plane_are_zero_and_the_tilt():
    tilt = np.pi / 6
    plane = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    tilted = np.array([[1.0, 0.0], [0.0, np.cos(tilt)], [0.0, np.sin(tilt)]])
    np.testing.assert_allclose(principal_angles(plane, tilted), [0.0, tilt], atol=1e-8)


def test_principal_angles_vanish_for_a_basis_and_any_invertible_mix_of_it():
    rng = np.random.default_rng(3)
    V = rng.normal(size=(12, 3))
    theta = 0.7
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                         [0, 0, 1]])
    skew = np.array([[1.0, 2.5, 0.0], [0.0, 1.0, -4.0], [0.0, 0.0, 3.0]])   # not orthogonal
    mixed = V @ rotation @ skew
    assert np.abs(mixed.T @ V).max() > 1                              # a genuinely different basis
    np.testing.assert_allclose(principal_angles(V, mixed), 0.0, atol=1e-7)
    # and not for a subspace that differs in one direction
    other = np.column_stack([V[:, :2], rng.normal(size=12)])
    assert principal_angles(V, other)[-1] > 0.1


def test_principal_angles_validate_their_inputs():
    A = np.random.default_rng(4).normal(size=(6, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(A, A[:5])
    with pytest.raises(ValueError, match="A must be 2-D"):
        principal_angles(A[:, 0], A)
    with pytest.raises(TypeError, match="B must hold floating-point"):
        principal_angles(A, np.ones((6, 2), dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        principal_angles(A, np.full((6, 2), np.nan))
    with pytest.raises(ValueError, match="linearly independent"):
        principal_angles(A, np.column_stack([A[:, 0], 2 * A[:, 0]]))
