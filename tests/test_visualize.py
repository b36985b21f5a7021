"""Facts about activation maximization and loss-landscape slices (nnimaging.visualize)."""

import numpy as np
import pytest
import torch
from torch import nn

from nnimaging import visualize as vis
from nnimaging._checks import UsageError


def test_activation_maximization_of_a_linear_unit_follows_its_weights():
    # the score w . x over [0, 1] is largest where w > 0 (x = 1) and smallest where w < 0 (x = 0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1)).double()
    before = model[1].weight.detach().clone()
    x = vis.activation_maximization(model, lambda out: out[0, 0], (1, 1, 4, 4), steps=100,
                                    lr=0.1, l2=0.0, blur=0.0, start=0.5)
    w = before.view(4, 4)
    assert torch.all((x[0, 0] - 0.5) * w > 0)          # every pixel moved the way its weight says
    strongest = x[0, 0].flatten()[w.abs().argmax()]
    assert min(strongest, 1 - strongest) < 0.01                # the strongest one nears its bound
    assert torch.all((x > 0) & (x < 1))                        # inside (0, 1), never clipped
    torch.testing.assert_close(model[1].weight, before, rtol=0, atol=0)   # the model is untouched
    assert all(p.requires_grad for p in model.parameters())


def test_activation_maximization_with_blur_is_smooth_and_deterministic():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1)).double()
    model(torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    runs = [vis.activation_maximization(model, lambda o: o[0, 0], (1, 1, 8, 8), steps=20, blur=1.0)
            for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert runs[0].min() >= 0 and runs[0].max() <= 1
    with pytest.raises(UsageError, match="shape must be"):
        vis.activation_maximization(model, lambda o: o[0, 0], (2, 1, 8, 8))
    with pytest.raises(UsageError, match="strictly inside clamp"):
        vis.activation_maximization(model, lambda o: o[0, 0], (1, 1, 8, 8), start=0.0)


def test_activation_maximization_accepts_an_image_as_start():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 1)).double()
    start = torch.linspace(0.2, 0.8, 9, dtype=torch.float64).view(1, 1, 3, 3)
    x = vis.activation_maximization(model, lambda o: o[0, 0], (1, 1, 3, 3), steps=1, lr=1e-9,
                                    l2=0.0, blur=0.0, start=start)
    torch.testing.assert_close(x, start, rtol=0, atol=1e-8)     # a tiny step stays at the start


def _quadratic():
    model = nn.Linear(2, 1, bias=False).double()
    x = torch.eye(2, dtype=torch.float64)
    target = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)   # minimum at w = (1, -2)
    loss = lambda m: float(((m(x) - target) ** 2).sum())
    return model, loss


def test_interpolation_losses_on_a_quadratic_and_restores_the_weights():
    model, loss = _quadratic()
    start = {"weight": torch.zeros(1, 2, dtype=torch.float64)}
    end = {"weight": torch.tensor([[1.0, -2.0]], dtype=torch.float64)}
    before = model.weight.detach().clone()
    alphas = [-1.0, 0.0, 0.5, 1.0, 2.0]
    line = vis.interpolation_losses(model, start, end, alphas, loss)
    np.testing.assert_allclose(line, [5 * (1 - a) ** 2 for a in alphas], atol=1e-12)
    torch.testing.assert_close(model.weight, before, rtol=0, atol=0)
    with pytest.raises(UsageError, match="start must map every parameter"):
        vis.interpolation_losses(model, {}, end, alphas, loss)


def test_plane_losses_layout_rows_are_betas():
    model, loss = _quadratic()
    center = {"weight": torch.tensor([[1.0, -2.0]], dtype=torch.float64)}
    d1 = {"weight": torch.tensor([[1.0, 0.0]], dtype=torch.float64)}
    d2 = {"weight": torch.tensor([[0.0, 1.0]], dtype=torch.float64)}
    plane = vis.plane_losses(model, center, d1, d2, [0.0, 1.0, 2.0], [0.0, 3.0], loss)
    assert plane.shape == (2, 3)
    np.testing.assert_allclose(plane, [[0, 1, 4], [9, 10, 13]], atol=1e-12)


def test_filter_normalized_direction_matches_each_filters_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3, 2))
    d = vis.filter_normalized_direction(model, torch.Generator().manual_seed(5))
    for name, p in model.named_parameters():
        if p.ndim == 1:
            assert torch.all(d[name] == 0)
        else:
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
    again = vis.filter_normalized_direction(model, torch.Generator().manual_seed(5))
    assert all(torch.equal(d[k], again[k]) for k in d)
