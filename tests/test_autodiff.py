"""Facts about the hand-written derivatives of chapter 3 (nnimaging.autodiff)."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from nnimaging import autodiff as ad
from nnimaging.demo import MAX_FRAMES, registry


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------ gradient descent
def test_gradient_descent_on_the_quadratic_is_the_closed_form_geometric_sequence():
    # one step multiplies theta_i by (1 - lr * lambda_i), so theta_k = (1 - lr * lambda)^k theta_0
    lam, theta0, lr = np.array([1.0, 10.0]), np.array([2.0, -1.5]), 0.07
    path = ad.gradient_descent(lambda th: ad.quadratic_gradient(th, lam), theta0, lr, 25)
    k = np.arange(26)[:, None]
    np.testing.assert_allclose(path, (1 - lr * lam) ** k * theta0, rtol=1e-12, atol=1e-15)


def test_quadratic_loss_and_gradient_agree_with_autograd():
    lam = np.array([0.5, 3.0, 7.0])
    theta = np.array([[1.0, -2.0, 0.3], [0.0, 0.5, -1.0]])
    t = torch.tensor(theta, requires_grad=True)
    loss = 0.5 * (torch.tensor(lam) * t**2).sum(dim=-1)
    loss.sum().backward()
    np.testing.assert_allclose(ad.quadratic_loss(theta, lam), loss.detach().numpy())
    np.testing.assert_allclose(ad.quadratic_gradient(theta, lam), t.grad.numpy())


def test_critical_learning_rate_separates_convergence_from_divergence():
    lam = np.array([1.0, 10.0])
    lr_max = ad.critical_learning_rate(lam)
    assert lr_max == pytest.approx(0.2)
    grad = lambda th: ad.quadratic_gradient(th, lam)  # noqa: E731
    below = ad.gradient_descent(grad, [1.0, 1.0], 0.99 * lr_max, 400)
    above = ad.gradient_descent(grad, [1.0, 1.0], 1.01 * lr_max, 400)
    assert np.abs(below[-1]).max() < 1e-1 * np.abs(below[0]).max()
    assert np.abs(above[-1]).max() > 10 * np.abs(above[0]).max()


def test_gradient_descent_rejects_bad_arguments():
    grad = lambda th: th  # noqa: E731
    with pytest.raises(ValueError, match="lr must be > 0"):
        ad.gradient_descent(grad, [1.0], 0.0, 3)
    with pytest.raises(ValueError, match="steps"):
        ad.gradient_descent(grad, [1.0], 0.1, -1)
    with pytest.raises(ValueError, match="1-D"):
        ad.gradient_descent(grad, [[1.0]], 0.1, 1)
    with pytest.raises(ValueError, match="size 2"):
        ad.quadratic_loss([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        ad.critical_learning_rate([1.0, -1.0])


# ------------------------------------------------------------------ finite differences
def test_finite_differences_have_the_truncation_errors_of_their_taylor_expansions():
    # f = a x^2 + b x: forward difference = f'(x) + a h exactly, central difference = f'(x)
    a, b, x, h = 3.0, -2.0, 0.7, 0.125  # powers of two keep the arithmetic exact
    f = lambda t: a * t * t + b * t  # noqa: E731
    exact = 2 * a * x + b
    assert ad.finite_difference(f, x, h, "forward") == pytest.approx(exact + a * h, abs=1e-12)
    assert ad.finite_difference(f, x, h, "central") == pytest.approx(exact, abs=1e-12)


def test_central_difference_error_shrinks_as_h_squared_until_round_off():
    f, x = (lambda t: math.log(t) ** 2), 3.0
    exact = 2 * math.log(x) / x
    e1 = abs(ad.finite_difference(f, x, 1e-2) - exact)
    e2 = abs(ad.finite_difference(f, x, 1e-3) - exact)
    assert e1 / e2 == pytest.approx(100, rel=0.05)          # truncation: O(h^2)
    tiny = abs(ad.finite_difference(f, x, 1e-13) - exact)    # round-off: O(eps / h)
    assert tiny > 100 * abs(ad.finite_difference(f, x, 1e-5) - exact)


def test_finite_difference_rejects_bad_step_and_scheme():
    with pytest.raises(ValueError, match="h must be > 0"):
        ad.finite_difference(math.sin, 0.0, 0.0)
    with pytest.raises(ValueError, match="scheme"):
        ad.finite_difference(math.sin, 0.0, 1e-3, "backward")


def test_numerical_gradient_matches_autograd():
    x = _randn(3, 4)
    w = _randn(3, 4, seed=1)
    f = lambda t: (torch.tanh(t) * w).sum() + (t**3).sum()  # noqa: E731
    xg = x.clone().requires_grad_(True)
    f(xg).backward()
    num = ad.numerical_gradient(f, x)
    assert num.shape == x.shape
    torch.testing.assert_close(num, xg.grad, rtol=1e-7, atol=1e-8)
    with pytest.raises(TypeError, match="float64"):
        ad.numerical_gradient(f, x.float())


# ------------------------------------------------------------------ y = log(x)^2 by hand
@pytest.mark.parametrize("x", [0.1, 0.5, 1.0, 3.0, 5.0])
def test_hand_written_backprop_of_log_squared_is_the_closed_form(x):
    r = ad.log_square(x)
    assert r["v1"] == pytest.approx(math.log(x))
    assert r["v2"] == pytest.approx(math.log(x) ** 2)
    assert r["grad_v2"] == 1.0
    assert r["grad_v1"] == pytest.approx(2 * math.log(x))
    assert r["grad_x"] == pytest.approx(2 * math.log(x) / x, rel=1e-14, abs=1e-15)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.log(t).square().backward()
    assert r["grad_x"] == pytest.approx(t.grad.item(), rel=1e-14, abs=1e-15)


def test_backward_steps_accumulate_gradients_of_a_value_used_twice():
    # y = log(x)^2 + log(x): v1 feeds the square and the output, so dy/dv1 = 2 v1 + 1
    x = ad.Value(2.0)
    v1 = ad.log_forward(x)
    v2 = ad.square_forward(v1)
    v2.grad = 1.0
    v1.grad = 1.0                 # from the "+ v1" branch
    ad.square_backward(v1, v2)    # adds 2 v1
    ad.log_backward(x, v1)
    assert x.grad == pytest.approx((2 * math.log(2.0) + 1) / 2.0)


def test_log_forward_rejects_non_positive_input():
    with pytest.raises(ValueError, match="positive"):
        ad.log_forward(ad.Value(0.0))


# ------------------------------------------------------------------ autograd functions
def test_multiply_passes_gradcheck_and_equals_torch():
    a, b = _randn(4, 3).requires_grad_(), _randn(4, 3, seed=1).requires_grad_()
    assert gradcheck(ad.Multiply.apply, (a, b))
    up = _randn(4, 3, seed=2)
    ga, gb = torch.autograd.grad(ad.Multiply.apply(a, b), (a, b), up)
    ta, tb = torch.autograd.grad(a * b, (a, b), up)
    torch.testing.assert_close(ga, ta)
    torch.testing.assert_close(gb, tb)
    with pytest.raises(ValueError, match="same shape"):
        ad.Multiply.apply(a, b[:2])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_function_passes_gradcheck(bias):
    g = _randn(5, 4).requires_grad_()
    w = _randn(3, 4, seed=1).requires_grad_()
    b = _randn(3, seed=2).requires_grad_() if bias else None
    assert gradcheck(ad.LinearFunction.apply, (g, w, b))


def test_linear_function_equals_torch_linear_forward_and_backward():
    g = _randn(6, 5).requires_grad_()
    w = _randn(4, 5, seed=1).requires_grad_()
    b = _randn(4, seed=2).requires_grad_()
    up = _randn(6, 4, seed=3)
    ours = ad.LinearFunction.apply(g, w, b)
    theirs = F.linear(g, w, b)
    torch.testing.assert_close(ours, theirs)
    for x, y in zip(torch.autograd.grad(ours, (g, w, b), up), torch.autograd.grad(theirs, (g, w, b), up)):
        torch.testing.assert_close(x, y)


def test_linear_backward_formulas_are_the_matrix_products_with_shapes_of_the_inputs():
    g, w, b = _randn(6, 5).requires_grad_(), _randn(4, 5, seed=1).requires_grad_(), _randn(4, seed=2)
    up = _randn(6, 4, seed=3)
    gg, gw = torch.autograd.grad(ad.LinearFunction.apply(g, w, b), (g, w), up)
    assert gg.shape == g.shape and gw.shape == w.shape
    torch.testing.assert_close(gg, up @ w)            # dL/dg = dL/dh W
    torch.testing.assert_close(gw, up.T @ g)          # dL/dW = (dL/dh)^T g, an outer-product sum


def test_jacobian_of_a_linear_map_is_its_weight_and_of_a_product_is_diagonal():
    w, g = _randn(3, 4), _randn(4, seed=1)
    jac = torch.autograd.functional.jacobian(lambda v: ad.LinearFunction.apply(v[None], w)[0], g)
    torch.testing.assert_close(jac, w)                # d(W g)/dg = W, shape (out, in)
    f = _randn(5, seed=2)
    gv = _randn(5, seed=3)
    jac = torch.autograd.functional.jacobian(lambda v: ad.Multiply.apply(v, gv), f)
    torch.testing.assert_close(jac, torch.diag(gv))   # d(f * g)/df = diag(g)


def test_linear_function_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="features per row"):
        ad.LinearFunction.apply(torch.zeros(2, 3), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="bias must have shape"):
        ad.LinearFunction.apply(torch.zeros(2, 5), torch.zeros(4, 5), torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        ad.LinearFunction.apply(torch.zeros(5), torch.zeros(4, 5))


def test_relu_function_passes_gradcheck_and_equals_torch():
    f = _randn(4, 6)
    f = (f + 0.1 * f.sign()).requires_grad_()  # keep entries away from the kink at 0
    assert gradcheck(ad.ReLUFunction.apply, (f,))
    up = _randn(4, 6, seed=1)
    (ours,) = torch.autograd.grad(ad.ReLUFunction.apply(f), f, up)
    (theirs,) = torch.autograd.grad(torch.relu(f), f, up)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours, up * (f > 0))


def test_relu_gradient_at_zero_is_zero_as_in_torch():
    f = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (grad,) = torch.autograd.grad(ad.ReLUFunction.apply(f).sum(), f)
    assert grad.tolist() == [0.0, 0.0, 1.0]


def test_hand_written_layers_start_and_train_like_torch_layers():
    torch.manual_seed(0)
    ours = nn.Sequential(ad.Linear(8, 6), ad.ReLU(), ad.Linear(6, 8))
    torch.manual_seed(0)
    theirs = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 8))
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(p, q)                       # same initialisation from the same seed
    x, y = torch.rand(16, 8, generator=torch.Generator().manual_seed(1)), torch.rand(16, 8)
    for model in (ours, theirs):
        for _ in range(5):
            loss = 0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q)


# ------------------------------------------------------------------ demos
def test_gradient_descent_demo_follows_the_closed_form_and_stops_when_it_leaves_the_plot():
    demo = registry["autodiff.gradient_descent"]()
    assert demo.n_combinations > MAX_FRAMES and demo.js is not None  # browser twin required
    r = demo(log10_lr=-1.0, start_angle=90)
    lr = 10.0**-1.0
    assert r["lr"] == pytest.approx(0.1)
    assert r["path_x"][0] == pytest.approx(0.0, abs=1e-12) and r["path_y"][0] == pytest.approx(2.5)
    k = np.arange(len(r["path_y"]))
    np.testing.assert_allclose(r["path_y"], 2.5 * (1 - lr * 10.0) ** k, atol=1e-12)
    assert r["rho"] == pytest.approx(0.9) and r["status"] == "converges"
    assert r["lr_max"] == pytest.approx(0.2)
    assert r["n_steps"] == ad.GD_STEPS
    loss = 0.5 * (r["path_x"] ** 2 + 10 * r["path_y"] ** 2)
    np.testing.assert_allclose(r["log_loss"], np.log10(np.maximum(loss, ad.LOSS_FLOOR)))
    bad = demo(log10_lr=-0.5, start_angle=150)         # lr = 0.316 > 0.2
    assert bad["status"] == "diverges" and bad["rho"] > 1
    assert bad["n_steps"] < ad.GD_STEPS
    assert np.abs([bad["path_x"][-1], bad["path_y"][-1]]).max() > ad.GD_BOUND
    assert np.abs([bad["path_x"][:-1], bad["path_y"][:-1]]).max() <= ad.GD_BOUND


def test_gradient_descent_demo_contours_are_level_sets_of_the_loss():
    r = registry["autodiff.gradient_descent"]()()
    x, y = r["contour_x"], r["contour_y"]
    ok = ~np.isnan(x)
    levels = ad.quadratic_loss(np.stack([x[ok], y[ok]], axis=1), ad.GD_CURVATURES)
    np.testing.assert_allclose(np.unique(np.round(levels, 9)), ad.GD_LEVELS)


def test_log_square_graph_demo_shows_backprop_values_and_tangent():
    demo = registry["autodiff.log_square_graph"]()
    assert len(demo.controls[0].positions) == 99
    r = demo(x=2.0)
    assert r["v1"] == pytest.approx(math.log(2.0)) and r["v2"] == pytest.approx(math.log(2.0) ** 2)
    assert r["dv1_dx"] == pytest.approx(0.5) and r["dv2_dv1"] == pytest.approx(2 * math.log(2.0))
    assert r["grad_x"] == pytest.approx(r["closed_form"]) == pytest.approx(math.log(2.0))
    slope = np.diff(r["tangent_y"]) / np.diff(r["tangent_x"])
    assert slope[0] == pytest.approx(r["grad_x"])
    np.testing.assert_allclose(r["curve_y"], np.log(r["curve_x"]) ** 2)


@pytest.mark.parametrize("name", ["autodiff.gradient_descent", "autodiff.log_square_graph"])
def test_demos_serialise_and_render_to_html(name):
    demo = registry[name]()
    spec = demo.spec()
    assert "frames" not in spec and spec["js"]["entry"] in spec["js"]["source"]
    json.dumps(spec, allow_nan=False)
    html = demo.to_html()
    assert f'data-demo="{name}"' in html


def test_ellipse_contours_are_level_sets_of_the_quadratic_loss_around_a_center():
    from nnimaging.autodiff import ellipse_contours, quadratic_loss

    lam = (1.0, 10.0)
    for center in (None, (1.0, 1.0)):
        x, y = ellipse_contours(lam, (0.5, 2.0), n=9, center=center)
        assert x.shape == y.shape == (2 * 10,) and np.isnan(x[9]) and np.isnan(y[19])
        c = np.zeros(2) if center is None else np.array(center)
        points = np.stack([x, y], axis=-1)[~np.isnan(x)] - c
        np.testing.assert_allclose(quadratic_loss(points, np.array(lam)), [0.5] * 9 + [2.0] * 9, rtol=1e-12)


# ------------------------------------------------------------------ inpainting: MLP against CNN
# ------------------------------------------------------------------ Jacobian layouts
def _h_of(g):
    return torch.stack([g[0] * g[1], g[0] + 3 * g[1], g[1] ** 2])


def test_numerator_layout_is_torch_jacobian_and_denominator_layout_its_transpose():
    g = torch.tensor([2.0, -1.0], dtype=torch.float64)
    by_hand = torch.tensor([[g[1], g[0]], [1.0, 3.0], [0.0, 2 * g[1]]], dtype=torch.float64)
    numerator = ad.numerical_jacobian(_h_of, g)
    denominator = ad.numerical_jacobian(_h_of, g, layout="denominator")
    assert numerator.shape == (3, 2) and denominator.shape == (2, 3)
    torch.testing.assert_close(numerator, by_hand, rtol=0, atol=1e-8)
    torch.testing.assert_close(numerator, torch.autograd.functional.jacobian(_h_of, g), rtol=0, atol=1e-8)
    assert torch.equal(denominator, numerator.T)


def test_chain_rule_order_in_each_layout_gives_autograds_gradient():
    # L = w . h(g): numerator layout multiplies the row dL/dh from the left, denominator layout
    # multiplies the column dL/dh from the right.
    g = _randn(2, seed=3).requires_grad_()
    w = _randn(3, seed=4)
    (w @ _h_of(g)).backward()
    row = w[None, :] @ ad.numerical_jacobian(_h_of, g.detach())
    column = ad.numerical_jacobian(_h_of, g.detach(), layout="denominator") @ w[:, None]
    torch.testing.assert_close(row[0], g.grad, rtol=0, atol=1e-8)
    torch.testing.assert_close(column[:, 0], g.grad, rtol=0, atol=1e-8)


def test_numerical_jacobian_rejects_bad_input():
    g = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="layout"):
        ad.numerical_jacobian(_h_of, g, layout="rows")
    with pytest.raises(TypeError, match="1-D float64"):
        ad.numerical_jacobian(_h_of, g.float())
    with pytest.raises(ValueError, match="h must be"):
        ad.numerical_jacobian(_h_of, g, h=0)
    with pytest.raises(ValueError, match="1-D tensor"):
        ad.numerical_jacobian(lambda v: v.sum(), g)
