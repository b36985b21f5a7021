"""Facts about the optimizers of chapter 3 (nnimaging.optimizers): momentum, Adam, their demo."""

import json
import math

import numpy as np
import pytest
import torch

from nnimaging import autodiff as ad
from nnimaging import optimizers as opt
from nnimaging.demo import MAX_FRAMES, registry


def _least_squares(seed=0):
    """A small float64 least-squares problem: gradient in NumPy, loss in torch."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(12, generator=gen, dtype=torch.float64)
    An, bn = A.numpy(), b.numpy()
    return (lambda th: An.T @ (An @ th - bn)), (lambda t: 0.5 * ((A @ t - b) ** 2).sum())


def _torch_path(loss, theta0, make_optimizer, steps):
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([theta])
    path = [theta.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        loss(theta).backward()
        optimizer.step()
        path.append(theta.detach().clone())
    return torch.stack(path).numpy()


# ------------------------------------------------------------------ the update rules vs torch.optim
@pytest.mark.parametrize("lr, momentum", [(0.01, 0.9), (0.05, 0.5), (0.02, 0.0)])
def test_momentum_follows_torch_sgd_step_for_step(lr, momentum):
    grad, loss = _least_squares()
    theta0 = np.array([1.0, -2.0, 0.5])
    ours = opt.optimize(grad, theta0, "momentum", lr, 60, momentum=momentum)
    theirs = _torch_path(loss, theta0, lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum), 60)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lr, betas, eps", [(0.05, (0.9, 0.999), 1e-8), (0.2, (0.5, 0.9), 1e-3),
                                            (0.01, (0.0, 0.99), 0.0)])
def test_adam_follows_torch_adam_step_for_step(lr, betas, eps):
    grad, loss = _least_squares(seed=1)
    theta0 = np.array([0.3, 2.0, -1.0])
    ours = opt.optimize(grad, theta0, "adam", lr, 60, betas=betas, eps=eps)
    theirs = _torch_path(loss, theta0,
                         lambda p: torch.optim.Adam(p, lr=lr, betas=betas, eps=eps), 60)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_gradient_descent_is_momentum_zero_and_the_chapters_gradient_descent():
    lam = np.array([1.0, 10.0])
    grad = lambda th: ad.quadratic_gradient(th, lam)  # noqa: E731
    path = opt.optimize(grad, [-2.0, 1.25], "gd", 0.05, 30, momentum=0.9)  # momentum ignored
    np.testing.assert_array_equal(path, ad.gradient_descent(grad, [-2.0, 1.25], 0.05, 30))
    np.testing.assert_array_equal(path, opt.optimize(grad, [-2.0, 1.25], "momentum", 0.05, 30,
                                                     momentum=0.0))


def test_momentum_under_a_constant_gradient_takes_steps_of_lr_over_one_minus_mu():
    theta, velocity, g = np.zeros(2), np.zeros(2), np.array([1.0, -3.0])
    for _ in range(400):
        new, velocity = opt.momentum_step(theta, velocity, g, 0.01, 0.9)
        step, theta = new - theta, new
    np.testing.assert_allclose(step, -0.01 / (1 - 0.9) * g, rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_adams_first_step_is_the_learning_rate_whatever_the_gradient_scale(scale):
    g = scale * np.array([2.0, -0.5, 1.0])
    zeros = np.zeros(3)
    theta, m, v = opt.adam_step(zeros, zeros, zeros, g, 1, 0.01)
    np.testing.assert_allclose(theta, -0.01 * np.sign(g), rtol=1e-4)   # eps = 1e-8 of |g| >= 5e-4
    np.testing.assert_allclose(m, 0.1 * g)                              # (1 - beta1) g
    np.testing.assert_allclose(v, 0.001 * g * g)                        # (1 - beta2) g²


def test_bias_correction_makes_the_running_means_exact_for_a_constant_gradient():
    g = np.array([0.7, -2.0])
    theta, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for step in range(1, 6):
        new, m, v = opt.adam_step(theta, m, v, g, step, 0.1, eps=0.0)
        np.testing.assert_allclose(m / (1 - 0.9**step), g, rtol=1e-12)
        np.testing.assert_allclose(new - theta, -0.1 * np.sign(g), rtol=1e-12)  # always lr
        theta = new


# ------------------------------------------------------------------ convergence of momentum
def test_momentum_rate_without_momentum_is_the_gradient_descent_factor():
    for lr in (0.01, 0.1, 0.19, 0.25):
        assert opt.momentum_rate(lr, 10.0, 0.0) == pytest.approx(abs(1 - lr * 10.0))


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_momentum_is_stable_exactly_below_lr_curvature_two_times_one_plus_mu(mu):
    lam = 4.0
    edge = 2 * (1 + mu) / lam
    assert opt.momentum_rate(0.99 * edge, lam, mu) < 1 < opt.momentum_rate(1.01 * edge, lam, mu)
    for factor, grows in ((0.99, False), (1.01, True)):
        path = opt.optimize(lambda th: lam * th, [1.0], "momentum", factor * edge, 3000, momentum=mu)
        assert (abs(path[-1, 0]) > 1) == grows


def test_momentum_rate_is_the_observed_decay_on_a_quadratic():
    lam, lr, mu = 10.0, 0.01, 0.3       # real eigenvalues: no oscillation to blur the ratio
    path = opt.optimize(lambda th: lam * th, [1.0], "momentum", lr, 400, momentum=mu)
    rate = opt.momentum_rate(lr, lam, mu)
    observed = (abs(path[400, 0]) / abs(path[200, 0])) ** (1 / 200)
    assert observed == pytest.approx(rate, rel=1e-3)


def test_optimally_tuned_momentum_converges_at_the_square_root_of_the_condition_number():
    lo, hi = 1.0, 10.0
    lr = 4 / (math.sqrt(hi) + math.sqrt(lo)) ** 2
    mu = ((math.sqrt(hi) - math.sqrt(lo)) / (math.sqrt(hi) + math.sqrt(lo))) ** 2
    kappa = hi / lo
    for lam in (lo, hi):
        assert opt.momentum_rate(lr, lam, mu) == pytest.approx(
            (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1), abs=1e-6)


# ------------------------------------------------------------------ Rosenbrock
def test_rosenbrock_has_its_minimum_zero_at_a_a_squared_and_autograds_gradient():
    assert opt.rosenbrock([1.0, 1.0]) == 0.0 and opt.rosenbrock([2.0, 4.0], a=2.0, b=10.0) == 0.0
    np.testing.assert_array_equal(opt.rosenbrock_gradient([1.0, 1.0]), [0.0, 0.0])
    points = np.array([[-1.2, 1.0], [0.5, -0.3], [2.0, 3.0]])
    t = torch.tensor(points, requires_grad=True)
    loss = (1.5 - t[:, 0]) ** 2 + 7.0 * (t[:, 1] - t[:, 0] ** 2) ** 2
    loss.sum().backward()
    np.testing.assert_allclose(opt.rosenbrock(points, 1.5, 7.0), loss.detach().numpy())
    np.testing.assert_allclose(opt.rosenbrock_gradient(points, 1.5, 7.0), t.grad.numpy(), rtol=1e-14)


def test_optimize_stops_after_the_first_iterate_outside_the_bound():
    path = opt.optimize(lambda th: 10.0 * th, [1.0, 0.5], "gd", 0.3, 100, bound=4.0)  # factor -2
    assert np.abs(path[-1]).max() > 4.0 and np.abs(path[:-1]).max() <= 4.0
    assert len(path) == 4                                                            # 1, 2, 4, 8


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, message", [
    (lambda: opt.momentum_step([1.0], [0.0], [1.0], 0.0, 0.9), r"lr must be a finite number > 0, got 0\.0"),
    (lambda: opt.momentum_step([1.0], [0.0], [1.0], float("nan"), 0.9), r"lr must be a finite number > 0"),
    (lambda: opt.momentum_step([1.0], [0.0], [1.0], 0.1, 1.0), r"momentum must be a number in \[0, 1\), got 1\.0"),
    (lambda: opt.momentum_step([1.0], [0.0], [1.0], 0.1, -0.1), r"momentum must be a number in \[0, 1\)"),
    (lambda: opt.momentum_step([1.0, 2.0], [0.0], [1.0, 1.0], 0.1, 0.9),
     r"velocity must have the shape of theta \(2,\), got \(1,\)"),
    (lambda: opt.momentum_step(np.ones((2, 2)), np.zeros((2, 2)), np.ones((2, 2)), 0.1, 0.9),
     r"theta must be a non-empty 1-D array, got shape \(2, 2\)"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0], [1.0], 0, 0.1), r"step must be an integer >= 1 \(the first step is 1\), got 0"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0], [1.0], 1.5, 0.1), r"step must be an integer >= 1"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0], [1.0], 1, 0.1, betas=0.9), r"betas must be a pair \(beta1, beta2\), got 0\.9"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0], [1.0], 1, 0.1, betas=(0.9, 1.0)), r"beta2 must be a number in \[0, 1\), got 1\.0"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0], [1.0], 1, 0.1, eps=-1.0), r"eps must be a number >= 0, got -1\.0"),
    (lambda: opt.adam_step([1.0], [0.0], [0.0, 0.0], [1.0], 1, 0.1), r"v must have the shape of theta \(1,\), got \(2,\)"),
    (lambda: opt.optimize(lambda th: th, [1.0], "sgd", 0.1, 5), r"method must be one of \('gd', 'momentum', 'adam'\), got 'sgd'"),
    (lambda: opt.optimize(lambda th: th, [1.0], "gd", 0.1, -1), r"steps must be an integer >= 0, got -1"),
    (lambda: opt.optimize(lambda th: th, [1.0], "gd", 0.1, 2.5), r"steps must be an integer >= 0, got 2\.5"),
    (lambda: opt.optimize(lambda th: th, [1.0], "gd", 0.1, 5, bound=0), r"bound must be > 0 or None, got 0"),
    (lambda: opt.optimize(lambda th: th, [], "gd", 0.1, 5), r"theta0 must be a non-empty 1-D array, got shape \(0,\)"),
    (lambda: opt.rosenbrock([1.0, 2.0, 3.0]), r"theta must end in a dimension of size 2 \(x, y\), got shape \(3,\)"),
    (lambda: opt.rosenbrock_gradient(1.0), r"theta must end in a dimension of size 2 \(x, y\), got shape \(\)"),
    (lambda: opt.momentum_rate(0.1, 0.0, 0.5), r"curvature must be a number > 0, got 0\.0"),
    (lambda: opt.momentum_rate(0.1, 1.0, 1.5), r"momentum must be a number in \[0, 1\), got 1\.5"),
])
def test_bad_input_says_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------ the demo
def test_demo_is_registered_with_a_twin_and_starts_on_momentum():
    import nnimaging.demos  # noqa: F401

    demo = registry["optimizers.paths"]()
    assert demo.n_combinations > MAX_FRAMES and demo.js is not None   # browser twin required
    assert demo.js.entry == "optimizerPathsResult"
    assert demo.defaults["optimizer"] == "momentum"   # so that moving mu changes the first figure
    spec = demo.spec()
    assert "frames" not in spec
    json.dumps(spec, allow_nan=False)
    assert 'data-demo="optimizers.paths"' in demo.to_html()


@pytest.mark.parametrize("surface", opt.SURFACES)
@pytest.mark.parametrize("optimizer", list(opt.METHOD_LABELS))
def test_demo_paths_are_the_optimizers_paths_from_the_common_start(surface, optimizer):
    demo = registry["optimizers.paths"]()
    r = demo(surface=surface, optimizer=optimizer, log10_lr=-2.0, momentum=0.5)
    method = opt.METHOD_LABELS[optimizer]
    loss, grad = opt._surface(surface)
    path = opt.optimize(grad, opt.DEMO_START, method, 0.01, opt.DEMO_STEPS, momentum=0.5,
                        betas=(0.5, opt.ADAM_BETA2), eps=opt.ADAM_EPS)
    np.testing.assert_array_equal(r["path_x"], path[:, 0])
    np.testing.assert_array_equal(r["path_y"], path[:, 1])
    np.testing.assert_allclose(r["log_loss"], np.log10(loss(path)))
    assert r["n_steps"] == opt.DEMO_STEPS and r["status"] == f"after {opt.DEMO_STEPS} steps"
    assert loss(np.array([1.0, 1.0])) == 0.0            # the minimum the demo marks


@pytest.mark.parametrize("surface", opt.SURFACES)
def test_demo_contours_are_level_sets_of_the_surface(surface):
    r = registry["optimizers.paths"]()(surface=surface)
    loss, _ = opt._surface(surface)
    pts = np.stack([r["contour_x"], r["contour_y"]], axis=1)
    curves = np.split(pts, np.nonzero(np.isnan(pts[:, 0]))[0])
    levels = opt.ROSENBROCK_LEVELS if surface == "Rosenbrock" else opt.VALLEY_LEVELS
    found = [loss(c[~np.isnan(c[:, 0])]) for c in curves if np.any(~np.isnan(c[:, 0]))]
    assert len(found) == len(levels)
    for values, level in zip(found, levels):
        np.testing.assert_allclose(values, level, rtol=1e-9)


def test_demo_reports_a_run_that_leaves_the_plot():
    r = registry["optimizers.paths"]()(surface="narrow valley", optimizer="gradient descent",
                                       log10_lr=-0.5, momentum=0.0)   # 0.316 > 2 / 10
    assert r["status"] == "diverged: left the plot" and r["n_steps"] < opt.DEMO_STEPS
    assert max(abs(r["path_x"][-1]), abs(r["path_y"][-1])) > opt.DEMO_BOUND
    assert np.all(np.isfinite(r["log_loss"]))


def test_demo_learning_rate_has_three_significant_digits():
    assert opt.demo_learning_rate(-1.5) == 0.0316
    assert opt.demo_learning_rate(0.0) == 1.0 and opt.demo_learning_rate(-4.0) == 1e-4
