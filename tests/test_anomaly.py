"""Tests for aecourse.anomaly against scikit-learn's ROC and direct computation."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from aecourse.anomaly import auroc, reconstruction_error
from aecourse.models import Autoencoder
from aecourse.pca import PCA


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_scikit_learn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.3
    scores = rng.normal(size=300) + labels
    if seed % 2:
        scores = np.round(scores, 1)             # many ties
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_equals_the_pairwise_probability_by_brute_force():
    rng = np.random.default_rng(9)
    scores, labels = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.5
    a, e = scores[labels], scores[~labels]
    brute = ((a[:, None] > e[None, :]) + 0.5 * (a[:, None] == e[None, :])).mean()
    assert auroc(scores, labels) == pytest.approx(brute, abs=1e-12)


def test_auroc_is_one_for_a_perfect_score_and_zero_for_a_reversed_one():
    labels = np.array([0, 0, 1, 1])
    assert auroc(np.array([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
    assert auroc(np.array([0.4, 0.3, 0.2, 0.1]), labels) == 0.0


@pytest.mark.parametrize("scores, labels, words", [
    (np.zeros(3), np.zeros(3), "both classes"),
    (np.zeros(3), np.array([0, 1]), "same length"),
    (np.zeros(3), np.array([0, 1, 2]), "0/1"),
    (np.array([0.0, np.nan]), np.array([0, 1]), "NaN"),
])
def test_auroc_rejects_bad_input(scores, labels, words):
    with pytest.raises(ValueError, match=words):
        auroc(scores, labels)


def test_reconstruction_error_of_a_model_is_the_per_example_squared_error():
    model = Autoencoder(6, 2, random_state=0)
    X = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    model.train()
    scores = reconstruction_error(model, X)
    with torch.no_grad():
        expected = ((model(torch.as_tensor(X)).numpy().astype(np.float64) - X) ** 2).sum(1)
    assert scores.shape == (5,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert model.training                    # its mode is restored


def test_reconstruction_error_of_pca_is_zero_in_its_subspace_and_positive_off_it():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 5))
    pca = PCA(2).fit(X)
    reconstruct = lambda Z: pca.inverse_transform(pca.transform(Z))  # noqa: E731
    assert reconstruction_error(reconstruct, X).max() < 1e-20
    assert reconstruction_error(reconstruct, X + rng.normal(size=X.shape)).min() > 0


def test_reconstruction_error_rejects_a_non_callable_and_a_wrong_shape():
    with pytest.raises(TypeError, match="callable"):
        reconstruction_error("model", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape of X"):
        reconstruction_error(lambda X: X[:, :2], np.zeros((2, 3)))
