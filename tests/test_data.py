"""Tests for aecourse.data: shapes, dtypes, ranges, seeding, offline use, bad input."""

import numpy as np
import pytest
import torch

from aecourse import data

F32_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture
def offline(no_network):
    """No network and empty file caches, so every loader really reads its files offline."""
    for reader in (data._read_digits, data._read_mnist, data._read_images):
        reader.cache_clear()


def assert_in_range(X, low, high):
    assert float(X.min()) >= low - F32_EPS and float(X.max()) <= high + F32_EPS, (
        f"expected values in [{low}, {high}], got [{X.min()}, {X.max()}]")


def offdiagonal_correlation(X):
    """Mean |correlation| between different pixels (0 = fully decorrelated)."""
    R = np.corrcoef(X, rowvar=False)
    return np.abs(R[~np.eye(len(R), dtype=bool)]).mean()


# ---------------------------------------------------------------- real images

def test_load_digits_offline_shape_dtype_range(offline):
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_load_mnist_offline_shape_dtype_range_and_balance(offline):
    X, y = data.load_mnist()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() >= 400, counts


def test_load_mnist_is_shuffled_and_seeded():
    _, y0 = data.load_mnist(random_state=0)
    assert len(np.unique(y0[:100])) > 5, "first 100 labels look sorted, not shuffled"
    X0, y0b = data.load_mnist(random_state=0)
    X1, y1 = data.load_mnist(random_state=1)
    np.testing.assert_array_equal(y0, y0b)
    assert not np.array_equal(y0, y1)
    # a different order of the same images
    assert np.isclose(X0.sum(), X1.sum(), rtol=1e-5)


def test_load_mnist_subset_has_requested_size_and_all_classes():
    X, y = data.load_mnist(300, random_state=3)
    assert X.shape == (300, 784) and y.shape == (300,)
    assert len(np.unique(y)) == 10


def test_load_mnist_images_look_like_digits():
    # Independent check of the file layout (label last): the mean image of the
    # ones is thin, so it has far less ink than the mean image of the zeros.
    X, y = data.load_mnist()
    assert X[y == 1].sum(axis=1).mean() < 0.7 * X[y == 0].sum(axis=1).mean()


# ---------------------------------------------------------------- patches

@pytest.mark.parametrize("whiten", [False, True])
def test_load_patches_offline_shape_dtype_range(offline, whiten):
    X, y = data.load_patches(2000, 8, whiten=whiten)
    assert X.shape == (2000, 64) and X.dtype == np.float32
    assert y.shape == (2000,) and y.dtype == np.int64
    assert_in_range(X, 0.1, 0.9)
    assert X.min() <= 0.1 + 1e-6 and X.max() >= 0.9 - 1e-6, "the +-3 sigma clip is never reached"
    assert set(np.unique(y)) <= set(range(len(data.PATCH_IMAGES)))


def test_load_patches_have_zero_mean_before_rescaling():
    X, _ = data.load_patches(500, 6)
    # (x / 3 sigma + 1) * 0.4 + 0.1 maps a zero-mean patch to mean 0.5, up to clipping
    assert abs(X.mean() - 0.5) < 0.01


def test_whitened_patches_are_decorrelated():
    X_raw, _ = data.load_patches(5000, 8, whiten=False)
    X_white, _ = data.load_patches(5000, 8, whiten=True)
    raw, white = offdiagonal_correlation(X_raw), offdiagonal_correlation(X_white)
    assert raw > 0.15, f"raw patches should have correlated pixels, got {raw:.3f}"
    assert white < raw / 2, f"whitening should decorrelate: {white:.3f} vs raw {raw:.3f}"


def test_load_patches_is_seeded():
    a, ya = data.load_patches(100, 8, random_state=5)
    b, yb = data.load_patches(100, 8, random_state=5)
    c, _ = data.load_patches(100, 8, random_state=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- binarize

def test_binarize_gives_only_zeros_and_ones_at_the_threshold():
    X = np.array([[0.0, 0.3, 0.5, 0.51, 1.0]], dtype=np.float32)
    B = data.binarize(X)
    assert B.dtype == np.float32 and B.shape == X.shape
    np.testing.assert_array_equal(B, [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(data.binarize(X, threshold=0.2), [[0, 1, 1, 1, 1]])


def test_binarize_digits_and_tensors():
    X, _ = data.load_digits()
    B = data.binarize(X)
    assert set(np.unique(B)) == {0.0, 1.0}
    T = data.binarize(torch.from_numpy(X))
    assert isinstance(T, torch.Tensor) and T.dtype == torch.float32
    np.testing.assert_array_equal(T.numpy(), B)


def test_binarize_rejects_int_and_nan_arrays():
    with pytest.raises(TypeError, match="X"):
        data.binarize(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="X.*NaN"):
        data.binarize(np.array([[0.2, np.nan]]))
    with pytest.raises(TypeError, match="threshold"):
        data.binarize(np.zeros((2, 2)), threshold="half")


# ---------------------------------------------------------------- toys

def test_make_curve_is_badly_summarised_by_one_line():
    X, t = data.make_curve(1000, noise=0.02, random_state=0)
    assert X.shape == (1000, 2) and X.dtype == np.float32
    assert t.shape == (1000,) and t.dtype == np.float32
    assert_in_range(t, 0.0, 1.0)
    # oracle: the squared singular values of the centred data are the PCA variances
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    residual_fraction = s[1] ** 2 / np.sum(s**2)
    assert residual_fraction > 0.2, residual_fraction


def test_make_curve_is_a_smooth_one_dimensional_curve():
    # Points close in t are close in X: t really is a 1-D code for the data.
    X, t = data.make_curve(2000, noise=0.0, random_state=1)
    order = np.argsort(t)
    steps = np.linalg.norm(np.diff(X[order], axis=0), axis=1)
    assert steps.max() < 0.05
    assert not np.array_equal(X, data.make_curve(2000, noise=0.0, random_state=2)[0])


def test_make_bmi_columns_and_bmi_formula():
    X, y = data.make_bmi(500, random_state=0)
    assert X.shape == (500, 2) and X.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.float32
    height, weight = X[:, 0], X[:, 1]
    np.testing.assert_allclose(y, weight / height**2, rtol=1e-6)
    assert 1.6 < height.mean() < 1.85 and 0.05 < height.std() < 0.13
    assert 1.3 < height.min() and height.max() < 2.2
    assert 30 < weight.min() and weight.max() < 200
    assert 14 < y.min() and y.max() < 45


# ---------------------------------------------------------------- copies and bad input

@pytest.mark.parametrize("loader", [data.load_digits, data.load_mnist, data.load_patches],
                         ids=["digits", "mnist", "patches"])
def test_returned_arrays_are_copies(loader):
    X, y = loader()
    X_before, y_before = X.copy(), y.copy()
    X[:] = -1.0
    y[:] = -1
    X2, y2 = loader()
    np.testing.assert_array_equal(X2, X_before)
    np.testing.assert_array_equal(y2, y_before)


def test_too_many_mnist_samples_says_how_many_exist():
    with pytest.raises(ValueError, match="n_samples.*5000"):
        data.load_mnist(5001)


@pytest.mark.parametrize("call, error, name", [
    (lambda: data.load_mnist(10.5), TypeError, "n_samples"),
    (lambda: data.load_mnist(0), ValueError, "n_samples"),
    (lambda: data.load_mnist(10, random_state="zero"), TypeError, "random_state"),
    (lambda: data.load_patches(1.0), TypeError, "n_patches"),
    (lambda: data.load_patches(10, 1000), ValueError, "patch_size"),
    (lambda: data.load_patches(10, 8, whiten="yes"), TypeError, "whiten"),
    (lambda: data.make_curve(-3), ValueError, "n_samples"),
    (lambda: data.make_curve(10, noise=-0.1), ValueError, "noise"),
    (lambda: data.make_bmi("500"), TypeError, "n_samples"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_no_network_fixture_blocks_connections(no_network):
    import socket

    with pytest.raises(OSError, match="network blocked"):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as s, pytest.raises(OSError, match="network blocked"):
        s.connect(("127.0.0.1", 9))
