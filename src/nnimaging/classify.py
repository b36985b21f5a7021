"""Classification helpers for chapter 1, *Learning from images*.

The chapter writes one training loop out in full where the supervised-learning recipe is
taught; the experiments after it (several models, several hidden sizes) call
:func:`train_classifier`, which runs the same loop. The other helpers make small 2-D toy
problems (:func:`gaussian_clusters`) and evaluate a classifier on a grid of points so that
its decision regions can be drawn (:func:`predict_on_grid`).

The history section uses the two oldest models: the McCulloch-Pitts threshold unit
(:func:`threshold_unit`) and Rosenblatt's perceptron learning rule (:func:`perceptron`), which
works on inputs with a 1 appended (:func:`append_one`), so that the bias is one more weight
(:func:`fold_bias`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import _checks

__all__ = [
    "train_classifier", "accuracy", "gaussian_clusters", "predict_on_grid", "plot_decision_regions",
    "append_one", "fold_bias", "threshold_unit", "perceptron", "PerceptronRun",
]

CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf"]
"""Colour of class 0..9 in decision-region plots (matplotlib's tab10)."""


def _check_xy(x, y) -> None:
    """Validate a batch of inputs ``x`` (N, ...) float and labels ``y`` (N,) int64."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold int64 class indices, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"y must have shape (N,), got shape {tuple(y.shape)}")
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples N, got x of shape {tuple(x.shape)} "
            f"and y of shape {tuple(y.shape)}"
        )
    if y.numel() == 0:
        raise ValueError("x and y are empty: need at least one sample")
    if int(y.min()) < 0:
        raise ValueError(f"class indices in y must be >= 0, got minimum {int(y.min())}")


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
) -> list[float]:
    """Train ``model`` in place with softmax cross-entropy and mini-batches.

    This is the loop written out in chapter 1. One ``torch.Generator`` seeded with
    ``seed`` draws a new order of the ``N`` samples at the start of every epoch
    (``torch.randperm``); the order is cut into batches of ``batch_size`` (the last one
    may be smaller). For each batch the mean cross-entropy of ``model(x_batch)``
    (logits) against ``y_batch`` is backpropagated and the optimizer takes one step.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs ``(B, ...)`` to logits ``(B, C)``, float32.
    x : (N, ...) float tensor
        Training inputs, for example flattened images ``(N, 784)`` with values in [0, 1].
    y : (N,) int64 tensor
        Class indices in ``[0, C)``.
    epochs : int
        Number of passes over the training set, >= 1.
    lr : float
        Learning rate (step size), > 0.
    batch_size : int
        Samples per gradient step, >= 1. ``batch_size >= N`` gives full-batch training.
    seed : int
        Seeds the shuffling, so that two calls with the same seed and the same initial
        model give the same result.
    optimizer : {"adam", "sgd"}
        ``torch.optim.Adam`` or plain ``torch.optim.SGD`` (no momentum).
    weight_decay : float
        L2 penalty passed to the optimizer, >= 0.

    Returns
    -------
    list of float
        ``epochs`` numbers: the mean training loss over the batches of each epoch,
        weighted by batch size (the loss is measured before each batch's step).
    """
    _check_xy(x, y)
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    lr = _checks.positive_number("lr", lr)
    weight_decay = _checks.non_negative_number("weight_decay", weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    n = x.shape[0]
    losses = []
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for idx in order.split(batch_size):
            logits = model(x[idx])
            if logits.ndim != 2 or logits.shape[0] != len(idx):
                raise ValueError(
                    f"model must return logits of shape (B, C) = ({len(idx)}, C), "
                    f"got shape {tuple(logits.shape)}"
                )
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach().item() * len(idx)
        losses.append(total / n)
    return losses


def _scores(model: nn.Module, inputs: torch.Tensor, expected: str) -> torch.Tensor:
    """The model's class scores for ``inputs`` (no gradients), checked to be one row per input."""
    with torch.no_grad():
        scores = model(inputs)
    if scores.ndim != 2 or scores.shape[0] != inputs.shape[0]:
        raise ValueError(f"model must return scores of shape {expected}, "
                         f"got shape {tuple(scores.shape)}")
    return scores


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose highest-scoring class is the true label.

    Parameters
    ----------
    model : torch.nn.Module
        Maps inputs ``(N, ...)`` to scores (logits) ``(N, C)``.
    x : (N, ...) float tensor
        Inputs.
    y : (N,) int64 tensor
        True class indices in ``[0, C)``.

    Returns
    -------
    float
        Accuracy in [0, 1]; the error rate is ``1 - accuracy``. Ties in the scores go
        to the lowest class index (``torch.argmax``).
    """
    _check_xy(x, y)
    scores = _scores(model, x, f"(N, C) = ({y.shape[0]}, C)")
    return float((scores.argmax(dim=1) == y).double().mean())


def gaussian_clusters(
    centers: Sequence[Sequence[float]],
    cluster_labels: Sequence[int],
    n_per_cluster: int,
    spread: float,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample a toy 2-D classification problem made of round Gaussian clusters.

    Cluster ``k`` holds ``n_per_cluster`` points ``centers[k] + spread * z`` with
    ``z`` standard normal, all labelled ``cluster_labels[k]``. Several clusters may share
    a label: four clusters at ``(+-1, +-1)`` with labels ``[0, 1, 1, 0]`` make the XOR
    problem, which no linear classifier separates.

    Parameters
    ----------
    centers : (K, 2) sequence of float
        Cluster centres.
    cluster_labels : (K,) sequence of int
        Class index (>= 0) of each cluster.
    n_per_cluster : int
        Points per cluster, >= 1.
    spread : float
        Standard deviation of each coordinate around the centre, >= 0.
    seed : int
        Seed of the ``torch.Generator`` that draws the points.

    Returns
    -------
    points : (K * n_per_cluster, 2) float32 tensor
        Cluster after cluster, in the order of ``centers``.
    labels : (K * n_per_cluster,) int64 tensor
    """
    c = torch.as_tensor(np.asarray(centers, dtype=np.float32))
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] == 0:
        raise ValueError(f"centers must have shape (K, 2) with K >= 1, got shape {tuple(c.shape)}")
    lab = np.asarray(cluster_labels)
    if lab.shape != (c.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"cluster_labels must be {c.shape[0]} integers (one per centre), got {cluster_labels!r}"
        )
    if lab.min() < 0:
        raise ValueError(f"cluster_labels must be >= 0, got {cluster_labels!r}")
    n = _checks.positive_int("n_per_cluster", n_per_cluster)
    spread = _checks.non_negative_number("spread", spread)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(c.shape[0], n, 2, generator=gen)
    points = (c[:, None, :] + float(spread) * noise).reshape(-1, 2)
    labels = torch.as_tensor(lab, dtype=torch.int64).repeat_interleave(n)
    return points, labels


def predict_on_grid(
    model: nn.Module,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    resolution: int = 200,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class predicted by a 2-D classifier at every point of a regular grid.

    Used to draw decision regions with ``plt.contourf`` or ``plt.imshow``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps points ``(M, 2)`` float32 to scores ``(M, C)``.
    xlim, ylim : (float, float)
        Range of the first and second coordinate, ``low < high``.
    resolution : int
        Grid points along each axis, >= 2.

    Returns
    -------
    xs : (resolution,) float64 array
        First coordinate of the grid columns, ``np.linspace(*xlim, resolution)``.
    ys : (resolution,) float64 array
        Second coordinate of the grid rows.
    classes : (resolution, resolution) int64 array
        ``classes[i, j]`` is the predicted class (argmax of the scores) at ``(xs[j], ys[i])``.
    """
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not lim[0] < lim[1]:
            raise ValueError(f"{name} must be (low, high) with low < high, got {lim!r}")
    res = _checks.positive_int("resolution", resolution, 2)
    xs = np.linspace(xlim[0], xlim[1], res)
    ys = np.linspace(ylim[0], ylim[1], res)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float32)
    scores = _scores(model, pts, f"(M, C) for M = {pts.shape[0]} points")
    classes = scores.argmax(dim=1).numpy().astype(np.int64).reshape(res, res)
    return xs, ys, classes


def plot_decision_regions(
    ax,
    model: nn.Module,
    points: torch.Tensor,
    labels: torch.Tensor,
    xlim: tuple[float, float] = (-3.0, 3.0),
    ylim: tuple[float, float] = (-3.0, 3.0),
    resolution: int = 200,
):
    """Draw the decision regions of a 2-D classifier and the labelled points on top.

    Each region is filled with a light tint of its class colour (:data:`CLASS_COLORS`);
    each point is drawn in the full colour of its true label, so misclassified points
    stand out as dots of one colour inside a region of another.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw into.
    model : torch.nn.Module
        Maps points ``(M, 2)`` float32 to scores ``(M, C)`` with ``C <= 10``.
    points : (N, 2) float tensor
        Points to draw.
    labels : (N,) int64 tensor
        Their classes, in ``[0, 10)``.
    xlim, ylim : (float, float)
        Extent of the drawn region.
    resolution : int
        Grid points per axis used by :func:`predict_on_grid`.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, holding one image (the regions, class indices as data) and one scatter.
    """
    from matplotlib.colors import ListedColormap, to_rgb

    _check_xy(points, labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got shape {tuple(points.shape)}")
    if int(labels.max()) >= len(CLASS_COLORS):
        raise ValueError(f"labels must be < {len(CLASS_COLORS)}, got {int(labels.max())}")
    xs, ys, classes = predict_on_grid(model, xlim, ylim, resolution)
    if classes.max() >= len(CLASS_COLORS):
        raise ValueError(f"model must have at most {len(CLASS_COLORS)} classes")
    tints = ListedColormap([0.7 * np.ones(3) + 0.3 * np.array(to_rgb(c)) for c in CLASS_COLORS])
    ax.imshow(classes, origin="lower", extent=(*xlim, *ylim), cmap=tints, vmin=-0.5,
              vmax=len(CLASS_COLORS) - 0.5, interpolation="nearest", aspect="auto")
    pts = points.detach().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], c=[CLASS_COLORS[k] for k in labels.tolist()], s=12,
               edgecolors="white", linewidths=0.4)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.grid(False)
    return ax


# ----------------------------------------------------------------------------------------
# the bias as one more weight, and the first neurons (McCulloch-Pitts, Rosenblatt)
# ----------------------------------------------------------------------------------------


def append_one(x: torch.Tensor) -> torch.Tensor:
    """Append a constant 1 to every input: ``x`` (N, D) becomes ``[x, 1]`` (N, D + 1).

    With :func:`fold_bias`, ``append_one(x) @ fold_bias(W, b).T`` equals ``x @ W.T + b``: the
    bias is the weight of an input that is always 1.

    Parameters
    ----------
    x : (N, D) float tensor
        One input per row.

    Returns
    -------
    (N, D + 1) tensor
        Same dtype and device as ``x``, last column all ones.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 2:
        raise ValueError("x must be a floating-point torch tensor of shape (N, D), got "
                         f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))} {getattr(x, 'dtype', '')}")
    return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)


def fold_bias(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The weight matrix with the bias as its last column: ``[W | b]``, shape (K, D + 1).

    Parameters
    ----------
    weight : (K, D) float tensor
        ``W`` of a linear layer ``W x + b`` (``nn.Linear.weight``: one row per output).
    bias : (K,) float tensor
        ``b``, same dtype as ``weight``.

    Returns
    -------
    (K, D + 1) tensor
        Acting on ``[x; 1]`` (:func:`append_one`) it gives ``W x + b``.
    """
    for name, t, ndim in (("weight", weight, 2), ("bias", bias, 1)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim != ndim:
            raise ValueError(f"{name} must be a floating-point torch tensor with {ndim} dimension(s), "
                             f"got {type(t).__name__} {tuple(getattr(t, 'shape', ()))}")
    if bias.shape[0] != weight.shape[0] or bias.dtype != weight.dtype:
        raise ValueError(f"bias must have shape ({weight.shape[0]},) and dtype {weight.dtype} to match "
                         f"weight {tuple(weight.shape)}, got {tuple(bias.shape)} {bias.dtype}")
    return torch.cat([weight, bias[:, None]], dim=1)


def threshold_unit(inputs, weights, threshold: float) -> np.ndarray:
    """McCulloch and Pitts' neuron (1943): fire (1) when the weighted sum reaches the threshold.

    Parameters
    ----------
    inputs : (N, D) array-like of 0 and 1
        One pattern of binary inputs per row.
    weights : (D,) array-like of float
        The weight of each input (McCulloch and Pitts used +1 for excitatory inputs; a negative
        weight makes an input inhibitory).
    threshold : float
        The unit fires when ``inputs @ weights >= threshold``.

    Returns
    -------
    (N,) int64 array of 0 and 1
    """
    x = np.asarray(inputs, dtype=float)
    w = _checks.vector("weights", weights)
    if x.ndim != 2 or x.shape[1] != w.size:
        raise ValueError(f"inputs must have shape (N, {w.size}) to match the {w.size} weights, "
                         f"got shape {x.shape}")
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("inputs must be binary (0 or 1), as in McCulloch and Pitts' model")
    if isinstance(threshold, bool) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return (x @ w >= threshold).astype(np.int64)


@dataclass
class PerceptronRun:
    """What :func:`perceptron` returns.

    Attributes
    ----------
    weights : (D + 1,) float64 array
        Final weights, acting on ``[x; 1]``: the last entry is the bias.
    updates : int
        Number of updates, that is, of mistakes made during training.
    mistakes : list of int
        Mistakes (= updates) in each epoch run; the last is 0 when the run converged.
    converged : bool
        True when an epoch made no mistake: every training point is then classified correctly.
    history : list of (D + 1,) float64 arrays
        The weights after each update (empty when there was none).
    """

    weights: np.ndarray
    updates: int
    mistakes: list
    converged: bool
    history: list = field(default_factory=list, repr=False)


def perceptron(points, labels, max_epochs: int) -> PerceptronRun:
    """Rosenblatt's perceptron learning rule on inputs with a 1 appended.

    Starting from ``w = 0``, visit the points in their given order, epoch after epoch. The
    prediction for ``x`` is ``y_hat = 1`` if ``w . [x; 1] > 0``, else ``0``; each point updates

        ``w <- w + (y - y_hat) [x; 1]``,

    which changes ``w`` only on a mistake (adding the input of a missed class-1 point,
    subtracting that of a missed class-0 point). Stops after the first epoch without a mistake,
    or after ``max_epochs``. A learning rate would only scale ``w`` (it starts at 0), so there
    is none. For linearly separable data the rule stops after at most ``(R / gamma)^2`` updates
    (Novikoff, 1962), ``R`` the largest ``||[x; 1]||`` and ``gamma`` the margin of any unit-length
    separating ``w``; for data that no line separates it never stops.

    Parameters
    ----------
    points : (N, D) array-like of float
        Inputs, one per row (a torch tensor is converted to float64 numpy).
    labels : (N,) array-like of 0 and 1
        Classes.
    max_epochs : int
        Passes over the data, >= 1.

    Returns
    -------
    PerceptronRun
    """
    x = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    y = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"points must have shape (N, D) with N >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("points must be finite numbers")
    if y.shape != (x.shape[0],) or not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be {x.shape[0]} values in {{0, 1}} (one per point), "
                         f"got shape {y.shape}")
    epochs = _checks.positive_int("max_epochs", max_epochs)
    inputs = np.hstack([x, np.ones((x.shape[0], 1))])
    w = np.zeros(inputs.shape[1])
    mistakes, history = [], []
    for _ in range(epochs):
        count = 0
        for x_i, y_i in zip(inputs, y):
            y_hat = 1 if w @ x_i > 0 else 0
            if y_hat != y_i:
                w = w + (y_i - y_hat) * x_i
                history.append(w.copy())
                count += 1
        mistakes.append(count)
        if count == 0:
            break
    return PerceptronRun(w, int(sum(mistakes)), mistakes, mistakes[-1] == 0, history)
