"""Facts about the chapter-1 classification helpers."""

import numpy as np
import pytest
import torch
from torch import nn

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from nnimaging.classify import (  # noqa: E402
    CLASS_COLORS, accuracy, gaussian_clusters, plot_decision_regions, predict_on_grid,
    train_classifier,
)


def _linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def _toy(n=24, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, c, (n,), generator=g)


# ------------------------------------------------------------------ train_classifier
def test_full_batch_sgd_step_is_the_closed_form_softmax_gradient():
    # For logits z = W x + b and mean cross-entropy, dL/dz = (softmax(z) - onehot(y)) / N,
    # so dL/dW = (P - Y)^T X / N and dL/db = sum of the rows of (P - Y) / N.
    x, y = _toy()
    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    w0, b0 = model.weight.detach().clone().double(), model.bias.detach().clone().double()
    xd = x.double()
    z = xd @ w0.T + b0
    p = torch.softmax(z, dim=1)
    onehot = nn.functional.one_hot(y, 3).double()
    loss0 = float(-(torch.log(p) * onehot).sum(dim=1).mean())
    grad_w = (p - onehot).T @ xd / len(x)
    grad_b = (p - onehot).mean(dim=0)
    lr = 0.5
    losses = train_classifier(model, x, y, epochs=1, lr=lr, batch_size=len(x), optimizer="sgd")
    assert losses == pytest.approx([loss0], rel=1e-6)
    torch.testing.assert_close(model.weight.detach().double(), w0 - lr * grad_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.bias.detach().double(), b0 - lr * grad_b, atol=1e-6, rtol=0)


def test_minibatch_loop_matches_a_hand_written_loop_with_the_documented_shuffling():
    x, y = _toy(n=23)  # 23 = 3 batches of 8, 8, 7
    torch.manual_seed(2)
    model = nn.Linear(5, 3)
    twin = nn.Linear(5, 3)
    twin.load_state_dict(model.state_dict())
    losses = train_classifier(model, x, y, epochs=3, lr=0.1, batch_size=8, seed=7, optimizer="sgd")

    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    expected = []
    gen = torch.Generator().manual_seed(7)
    for epoch in range(3):
        order = torch.randperm(23, generator=gen)
        total = 0.0
        for start in range(0, 23, 8):
            idx = order[start:start + 8]
            loss = nn.functional.cross_entropy(twin(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach().item() * len(idx)
        expected.append(total / 23)
    assert losses == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(model.weight, twin.weight, rtol=0, atol=0)


def test_same_seed_same_model_and_different_seed_different_model():
    x, y = _toy(n=40)
    results = []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        model = nn.Linear(5, 3)
        train_classifier(model, x, y, epochs=2, lr=0.05, batch_size=7, seed=seed)
        results.append(model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)
    assert not torch.equal(results[0], results[2])


def test_adam_separates_well_separated_clusters_and_loss_decreases():
    x, y = gaussian_clusters([[-2, 0], [2, 0], [0, 3]], [0, 1, 2], 30, 0.3, seed=0)
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    losses = train_classifier(model, x, y, epochs=60, lr=0.05, batch_size=16)
    assert len(losses) == 60
    assert losses[-1] < 0.1 * losses[0]
    assert accuracy(model, x, y) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=-1.0), "lr"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_train_classifier_rejects_bad_settings(kwargs, message):
    x, y = _toy()
    settings = dict(epochs=1, lr=0.1, batch_size=4) | kwargs
    with pytest.raises(ValueError, match=message):
        train_classifier(nn.Linear(5, 3), x, y, **settings)


def test_train_classifier_rejects_bad_data():
    x, y = _toy()
    with pytest.raises(TypeError, match="int64"):
        train_classifier(nn.Linear(5, 3), x, y.float(), epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(TypeError, match="floating"):
        train_classifier(nn.Linear(5, 3), x.long(), y, epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match="same number of samples"):
        train_classifier(nn.Linear(5, 3), x[:-1], y, epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(TypeError, match="torch tensors"):
        train_classifier(nn.Linear(5, 3), x.numpy(), y, epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        flat = nn.Sequential(nn.Linear(5, 3), nn.Flatten(0))
        train_classifier(flat, x, y, epochs=1, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_classifier(nn.Identity(), x, y, epochs=1, lr=0.1, batch_size=4)


# ------------------------------------------------------------------ accuracy
def test_accuracy_counts_argmax_hits():
    # scores = x itself: the predicted class is the index of the largest input entry
    x = torch.tensor([[3.0, 1, 0], [0, 2, 1], [0, 0, 5], [1, 4, 0]])
    y = torch.tensor([0, 1, 1, 2])
    assert accuracy(nn.Identity(), x, y) == 0.5
    assert accuracy(nn.Identity(), x, torch.tensor([0, 1, 2, 1])) == 1.0


def test_accuracy_breaks_ties_towards_the_lowest_class():
    x = torch.tensor([[1.0, 1.0, 0.0]])
    assert accuracy(nn.Identity(), x, torch.tensor([0])) == 1.0
    assert accuracy(nn.Identity(), x, torch.tensor([1])) == 0.0


def test_accuracy_does_not_record_gradients_and_checks_shapes():
    model = nn.Linear(5, 3)
    x, y = _toy()
    accuracy(model, x, y)
    assert model.weight.grad is None
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        accuracy(nn.Flatten(0), x, y)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        accuracy(model, x, y[:, None])


# ------------------------------------------------------------------ gaussian_clusters
def test_clusters_have_the_requested_layout_and_statistics():
    centers = [[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]]
    pts, lab = gaussian_clusters(centers, [0, 0, 1, 1], 5000, 0.2, seed=3)
    assert pts.shape == (20000, 2) and pts.dtype == torch.float32
    assert lab.dtype == torch.int64
    assert lab.tolist() == [0] * 10000 + [1] * 10000
    blocks = pts.reshape(4, 5000, 2)
    # the sample mean of 5000 points is within 5 standard errors (0.2 / sqrt(5000)) of the centre
    np.testing.assert_allclose(blocks.mean(dim=1).numpy(), centers, atol=5 * 0.2 / 5000**0.5)
    np.testing.assert_allclose(blocks.std(dim=1).numpy(), 0.2, rtol=0.05)


def test_clusters_are_reproducible_and_exact_without_spread():
    a = gaussian_clusters([[0, 0], [2, 1]], [1, 0], 4, 0.5, seed=1)
    b = gaussian_clusters([[0, 0], [2, 1]], [1, 0], 4, 0.5, seed=1)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    pts, lab = gaussian_clusters([[0, 0], [2, 1]], [1, 0], 3, 0.0)
    assert pts.tolist() == [[0, 0]] * 3 + [[2, 1]] * 3
    assert lab.tolist() == [1, 1, 1, 0, 0, 0]


def test_clusters_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"shape \(K, 2\)"):
        gaussian_clusters([[0, 0, 0]], [0], 3, 0.1)
    with pytest.raises(ValueError, match="one per centre"):
        gaussian_clusters([[0, 0], [1, 1]], [0], 3, 0.1)
    with pytest.raises(ValueError, match="n_per_cluster"):
        gaussian_clusters([[0, 0]], [0], 0, 0.1)
    with pytest.raises(ValueError, match="spread"):
        gaussian_clusters([[0, 0]], [0], 3, -0.1)


# ------------------------------------------------------------------ predict_on_grid
def test_grid_prediction_of_a_linear_model_matches_the_half_plane():
    # scores (x0 + x1 - 0.55, 0): class 0 exactly where x0 + x1 > 0.55 (no grid point on the line)
    model = _linear([[1.0, 1.0], [0.0, 0.0]], [-0.55, 0.0])
    xs, ys, classes = predict_on_grid(model, (-1.0, 1.0), (-2.0, 2.0), resolution=33)
    assert classes.shape == (33, 33) and classes.dtype == np.int64
    np.testing.assert_array_equal(xs, np.linspace(-1, 1, 33))
    np.testing.assert_array_equal(ys, np.linspace(-2, 2, 33))
    expected = np.where(xs[None, :] + ys[:, None] > 0.55, 0, 1)
    np.testing.assert_array_equal(classes, expected)


def test_grid_rows_follow_the_second_coordinate():
    model = _linear([[0.0, 1.0], [0.0, -1.0]], [0.0, 0.0])  # class 0 above the x axis
    xs, ys, classes = predict_on_grid(model, (0.0, 1.0), (-1.0, 1.0), resolution=4)
    np.testing.assert_array_equal(classes[:, 0], [1, 1, 0, 0])
    assert (classes == classes[:, :1]).all()


def test_grid_rejects_bad_limits_and_resolution():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="xlim"):
        predict_on_grid(model, (1.0, 0.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="resolution"):
        predict_on_grid(model, (0.0, 1.0), (0.0, 1.0), resolution=1)


# ------------------------------------------------------------------ plot_decision_regions
def test_plot_draws_the_grid_prediction_and_every_point_in_its_class_colour():
    model = _linear([[1.0, 0.0], [-1.0, 0.0]], [0.0, 0.0])   # class 0 right of the y axis
    points = torch.tensor([[1.0, 0.5], [-1.0, 2.0], [2.0, -1.0]])
    labels = torch.tensor([0, 1, 1])
    fig, ax = plt.subplots()
    try:
        assert plot_decision_regions(ax, model, points, labels, (-3, 3), (-2, 2), 50) is ax
        (image,) = ax.images
        expected_classes = predict_on_grid(model, (-3, 3), (-2, 2), 50)[2]
        np.testing.assert_array_equal(image.get_array(), expected_classes)
        assert image.get_extent() == [-3, 3, -2, 2]
        (scatter,) = ax.collections
        np.testing.assert_array_equal(scatter.get_offsets(), points.numpy())
        expected = np.array([to_rgba(CLASS_COLORS[k]) for k in labels.tolist()])
        np.testing.assert_allclose(scatter.get_facecolors(), expected)
        assert ax.get_xlim() == (-3, 3) and ax.get_ylim() == (-2, 2)
    finally:
        plt.close(fig)


def test_plot_rejects_points_that_are_not_2d():
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match=r"\(N, 2\)"):
            labels = torch.zeros(4, dtype=torch.int64)
            plot_decision_regions(ax, nn.Linear(3, 2), torch.zeros(4, 3), labels)
    finally:
        plt.close(fig)


# ------------------------------------------- the bias as a weight, the perceptron (history)
from nnimaging.classify import append_one, fold_bias, perceptron, threshold_unit  # noqa: E402

CORNERS = [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_folded_bias_on_appended_one_is_the_affine_map_of_nn_linear():
    torch.manual_seed(3)
    layer = nn.Linear(7, 4).double()
    x = torch.randn(9, 7, dtype=torch.float64)
    augmented = append_one(x)
    assert augmented.shape == (9, 8) and torch.equal(augmented[:, -1], torch.ones(9, dtype=torch.float64))
    big_w = fold_bias(layer.weight.detach(), layer.bias.detach())
    assert big_w.shape == (4, 8)
    torch.testing.assert_close(augmented @ big_w.T, layer(x).detach(), rtol=1e-14, atol=1e-14)


def test_append_one_and_fold_bias_reject_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        append_one(torch.ones(3))
    with pytest.raises(ValueError, match="floating-point"):
        append_one(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        fold_bias(torch.ones(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="weight"):
        fold_bias(np.ones((4, 3)), torch.ones(4))


def test_threshold_units_compute_and_or_not():
    assert threshold_unit(CORNERS, [1, 1], 2).tolist() == [0, 0, 0, 1]      # AND
    assert threshold_unit(CORNERS, [1, 1], 1).tolist() == [0, 1, 1, 1]      # OR
    assert threshold_unit([[0], [1]], [-1], 0).tolist() == [1, 0]            # NOT
    with pytest.raises(ValueError, match="binary"):
        threshold_unit([[0.5, 1]], [1, 1], 1)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        threshold_unit([[0, 1, 1]], [1, 1], 1)


def test_perceptron_follows_the_hand_traces_on_or_and_and():
    run = perceptron(CORNERS, [0, 1, 1, 1], max_epochs=10)                 # OR
    assert run.converged and run.mistakes == [1, 2, 1, 0] and run.updates == 4
    assert run.weights.tolist() == [1.0, 1.0, 0.0]
    assert [w.tolist() for w in run.history] == [[0, 1, 1], [0, 1, 0], [1, 1, 1], [1, 1, 0]]
    run = perceptron(CORNERS, [0, 0, 0, 1], max_epochs=10)                 # AND
    assert run.converged and run.mistakes == [1, 3, 3, 2, 1, 0] and run.updates == 10
    assert run.weights.tolist() == [2.0, 1.0, -2.0]


def test_perceptron_never_stops_on_xor_and_a_zero_mistake_epoch_means_all_correct():
    run = perceptron(CORNERS, [0, 1, 1, 0], max_epochs=500)
    assert not run.converged and len(run.mistakes) == 500 and min(run.mistakes) >= 1
    x, y = gaussian_clusters([[-1, -1], [1, 1]], [0, 1], n_per_cluster=30, spread=0.4, seed=0)
    run = perceptron(x, y, max_epochs=100)
    assert run.converged
    scores = np.hstack([x.double().numpy(), np.ones((60, 1))]) @ run.weights
    assert np.array_equal((scores > 0).astype(int), y.numpy())


def test_perceptron_updates_stay_within_novikoffs_bound():
    # Any unit-length w* that separates the data with margin gamma bounds the updates by (R/gamma)^2.
    x, y = gaussian_clusters([[-1, -1], [1, 1]], [0, 1], n_per_cluster=30, spread=0.4, seed=0)
    inputs = np.hstack([x.double().numpy(), np.ones((60, 1))])
    signs = 2 * y.numpy() - 1
    w_star = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    gamma = (signs * (inputs @ w_star)).min()
    assert gamma > 0
    run = perceptron(x, y, max_epochs=1000)
    radius = np.linalg.norm(inputs, axis=1).max()
    assert run.converged and 1 <= run.updates <= (radius / gamma) ** 2


def test_perceptron_rejects_bad_input():
    with pytest.raises(ValueError, match=r"values in \{0, 1\}"):
        perceptron(CORNERS, [0, 1, 2, 1], max_epochs=3)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        perceptron([0, 1], [0, 1], max_epochs=3)
    with pytest.raises(ValueError, match="max_epochs"):
        perceptron(CORNERS, [0, 1, 1, 1], max_epochs=0)
