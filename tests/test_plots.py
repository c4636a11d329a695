"""Tests for aecourse.plots: what each figure contains, and clear errors on bad input."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from aecourse import plots


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def images_in(fig):
    return [image for ax in fig.axes for image in ax.images]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------- show_images

def test_show_images_draws_one_image_per_row_in_a_grid(rng):
    X = rng.random((23, 64)).astype(np.float32)
    fig = plots.show_images(X, n_cols=10, titles=[str(i) for i in range(23)], title="digits")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 30  # 3 rows of 10
    images = images_in(fig)
    assert len(images) == 23
    np.testing.assert_allclose(images[7].get_array(), X[7].reshape(8, 8), rtol=1e-6)
    assert fig.axes[7].get_title() == "7"


def test_show_images_uses_given_shape_and_accepts_tensors(rng):
    X = torch.tensor(rng.random((4, 12)), dtype=torch.float32, requires_grad=True)
    fig = plots.show_images(X, shape=(3, 4))
    images = images_in(fig)
    assert len(images) == 4 and images[0].get_array().shape == (3, 4)


@pytest.mark.parametrize("X, kwargs, error, pattern", [
    (np.zeros(64), {}, ValueError, "X must be 2-D"),
    (np.zeros((3, 10)), {}, ValueError, "shape"),
    (np.zeros((3, 12)), {"shape": (5, 5)}, ValueError, "shape.*12"),
    (np.zeros((3, 64), dtype=np.int64), {}, TypeError, "X"),
    (np.zeros((3, 64)), {"n_cols": 0}, ValueError, "n_cols"),
    (np.zeros((3, 64)), {"titles": ["a"]}, ValueError, "titles"),
])
def test_show_images_rejects_bad_input(X, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        plots.show_images(X, **kwargs)


# ---------------------------------------------------------------- show_reconstructions

def test_show_reconstructions_puts_originals_above_reconstructions(rng):
    X = rng.random((12, 16))
    X_hat = rng.random((12, 16))
    fig = plots.show_reconstructions(X, torch.from_numpy(X_hat), n=5)
    assert isinstance(fig, Figure)
    axes = np.array(fig.axes).reshape(2, 5)
    for j in range(5):
        np.testing.assert_allclose(axes[0, j].images[0].get_array(), X[j].reshape(4, 4))
        np.testing.assert_allclose(axes[1, j].images[0].get_array(), X_hat[j].reshape(4, 4))
    assert axes[0, 0].get_ylabel() == "original"
    assert axes[1, 0].get_ylabel() == "reconstruction"


def test_show_reconstructions_draws_at_most_m_pairs(rng):
    fig = plots.show_reconstructions(rng.random((3, 4)), rng.random((3, 4)), n=10)
    assert len(images_in(fig)) == 6


def test_show_reconstructions_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="X and X_hat"):
        plots.show_reconstructions(np.zeros((4, 16)), np.zeros((4, 9)))


# ---------------------------------------------------------------- filters

def test_max_activating_inputs_have_unit_norm_and_maximise_the_activation(rng):
    W = rng.standard_normal((6, 25))
    X_max = plots.max_activating_inputs(W)
    assert X_max.shape == (6, 25)
    np.testing.assert_allclose(np.linalg.norm(X_max, axis=1), 1.0, rtol=1e-12)
    best = np.sum(W * X_max, axis=1)  # W_i . x_i for each unit i
    # no random input on the unit sphere (nor inside the ball) activates any unit more
    U = rng.standard_normal((5000, 25))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    assert np.all((U @ W.T) <= best + 1e-12)
    # and the maximum is ||W_i||, the Cauchy-Schwarz bound
    np.testing.assert_allclose(best, np.linalg.norm(W, axis=1), rtol=1e-12)


def test_max_activating_inputs_accepts_parameters_and_rejects_dead_units():
    W = torch.nn.Parameter(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))
    X_max = plots.max_activating_inputs(W)
    np.testing.assert_allclose(X_max, (W / W.norm(dim=1, keepdim=True)).detach().numpy(),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="W has all-zero rows"):
        plots.max_activating_inputs(np.vstack([np.ones(4), np.zeros(4)]))
    with pytest.raises(ValueError, match="W must be 2-D"):
        plots.max_activating_inputs(np.ones(4))


def test_show_filters_scales_each_filter_to_its_own_range(rng):
    W = rng.standard_normal((10, 36)) * np.arange(1, 11)[:, None]
    fig = plots.show_filters(W)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 12  # ceil(sqrt(10)) = 4 columns, 3 rows
    images = images_in(fig)
    assert len(images) == 10
    X_max = W / np.linalg.norm(W, axis=1, keepdims=True)
    for i, image in enumerate(images):
        np.testing.assert_allclose(image.get_clim(), (X_max[i].min(), X_max[i].max()))
    assert len(plots.show_filters(W, n_cols=5).axes) == 10


# ---------------------------------------------------------------- codes, history, KL

def test_plot_codes_legend_for_few_classes_colourbar_for_many(rng):
    H = rng.standard_normal((90, 2))
    fig = plots.plot_codes(H, np.repeat([0, 1, 2], 30), title="codes")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1", "2"]
    fig = plots.plot_codes(torch.from_numpy(H), np.arange(90) % 30)
    assert len(fig.axes) == 2  # the scatter and its colour bar


def test_plot_codes_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="H must have 2 columns"):
        plots.plot_codes(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="y must have shape"):
        plots.plot_codes(np.zeros((5, 2)), np.zeros(4))


def test_plot_history_draws_train_and_validation_per_epoch():
    history = {"loss": [3.0, 2.0, 1.5, 1.2], "val_loss": [3.1, 2.2, 1.9, 1.8], "seconds": 1.0}
    fig = plots.plot_history(history, log=True, title="training")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), history["val_loss"])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    assert len(plots.plot_history({"loss": [1.0, 0.5]}).axes[0].lines) == 1
    with pytest.raises(ValueError, match="history"):
        plots.plot_history([1.0, 0.5])


def test_plot_kl_draws_the_kl_curve_with_its_zero_at_rho():
    fig = plots.plot_kl(0.2)
    fig.canvas.draw()  # renders the mathtext labels, which fails on bad TeX
    ax = fig.axes[0]
    curve, vline = ax.lines
    rho_hat, kl = curve.get_xdata(), curve.get_ydata()
    assert rho_hat.min() > 0 and rho_hat.max() < 1
    expected = 0.2 * np.log(0.2 / rho_hat) + 0.8 * np.log(0.8 / (1 - rho_hat))
    np.testing.assert_allclose(kl, expected, rtol=1e-6, atol=1e-12)
    assert abs(rho_hat[np.argmin(kl)] - 0.2) < 0.01
    np.testing.assert_allclose(vline.get_xdata(), [0.2, 0.2])


@pytest.mark.parametrize("rho, error", [(0.0, ValueError), (1.5, ValueError), ("0.2", TypeError)])
def test_plot_kl_rejects_rho_outside_the_open_unit_interval(rho, error):
    with pytest.raises(error, match="rho"):
        plots.plot_kl(rho)
