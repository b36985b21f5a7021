"""Facts about the per-pixel prediction helpers (nnimaging.segmentation)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nnimaging import segmentation as seg
from nnimaging._checks import UsageError


def test_shapes_dataset_is_reproducible_and_labels_its_shapes():
    x1, y1 = seg.shapes_dataset(6, size=20, seed=4)
    x2, y2 = seg.shapes_dataset(6, size=20, seed=4)
    assert x1.shape == (6, 1, 20, 20) and y1.shape == (6, 20, 20)
    assert x1.dtype == torch.float64 and y1.dtype == torch.int64
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)
    assert torch.equal(y1, y2)
    assert set(torch.unique(y1).tolist()) <= {0, 1, 2}
    # without noise, labelled pixels hold a shape's brightness and the background is zero
    x, y = seg.shapes_dataset(20, size=24, seed=1, noise=0.0)
    assert torch.all(x[:, 0][y == 0] == 0)
    assert torch.all((x[:, 0][y > 0] >= 0.5) & (x[:, 0][y > 0] <= 1))


def test_discs_and_squares_have_the_same_area_on_average():
    # (in large images, where few shapes are cut by the border)
    _, y = seg.shapes_dataset(2000, size=96, seed=0, noise=0.0, shapes=(1, 1))
    disc, square = (y == 1).sum(dim=(1, 2)), (y == 2).sum(dim=(1, 2))
    d, s = disc[disc > 0].double().mean(), square[square > 0].double().mean()
    assert abs(float(d / s) - 1) < 0.05


def test_sliding_window_and_fully_convolutional_predictions_are_identical():
    torch.manual_seed(0)
    model = seg.WindowClassifier(window=7, width=4, classes=3).double()
    x, _ = seg.shapes_dataset(2, size=12, seed=0)
    slid = seg.sliding_window_predict(model, x, batch=50)
    full = seg.fully_convolutional_predict(model, x)
    assert slid.shape == full.shape == (2, 3, 12, 12)
    torch.testing.assert_close(slid, full, rtol=0, atol=1e-12)
    # one window on its own gives the prediction of its centre pixel
    patch = torch.nn.functional.pad(x, (3, 3, 3, 3))[:1, :, 5:12, 2:9]
    with torch.no_grad():
        torch.testing.assert_close(model(patch)[0, :, 0, 0], full[0, :, 5, 2], rtol=0, atol=1e-12)


def test_window_classifier_maps_a_window_to_one_prediction():
    model = seg.WindowClassifier(window=11, width=5, classes=4)
    assert model(torch.zeros(3, 1, 11, 11)).shape == (3, 4, 1, 1)
    with pytest.raises(UsageError, match="window must be odd"):
        seg.WindowClassifier(window=6)


def test_conv_multiplies_counts_kernel_times_inputs_per_output():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 1, groups=1),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    expected = 6 * 6 * 3 * (2 * 9) + 6 * 6 * 4 * 3 + 5 * 4 * 6 * 6
    assert seg.conv_multiplies(net, (1, 2, 8, 8)) == expected
    grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)
    assert seg.conv_multiplies(grouped, (1, 4, 5, 5)) == 25 * 8 * 2 * 9


@pytest.mark.parametrize("skips", [True, False])
def test_segmentation_net_keeps_the_image_size(skips):
    net = seg.SegmentationNet(classes=3, width=4, depth=2, skips=skips)
    assert net(torch.zeros(2, 1, 16, 12)).shape == (2, 3, 16, 12)
    with pytest.raises(UsageError, match="divisible by 2\\*\\*depth = 4"):
        net(torch.zeros(1, 1, 10, 12))


def test_unet_and_encoder_decoder_differ_only_in_the_decoders_input_channels():
    unet = seg.SegmentationNet(width=4, depth=2, skips=True)
    plain = seg.SegmentationNet(width=4, depth=2, skips=False)
    u, p = dict(unet.named_parameters()), dict(plain.named_parameters())
    assert u.keys() == p.keys()
    differ = [k for k in u if u[k].shape != p[k].shape]
    assert differ == ["dec.0.0.weight", "dec.1.0.weight"]
    assert u["dec.0.0.weight"].shape[1] == 2 * p["dec.0.0.weight"].shape[1]


def test_training_lowers_the_loss_and_is_reproducible():
    x, y = seg.shapes_dataset(16, size=16, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = seg.SegmentationNet(width=4, depth=1).double()
        runs.append(seg.train_segmenter(net, x, y, steps=30, lr=1e-2, batch_size=4))
    assert runs[0] == runs[1]
    assert np.mean(runs[0][-5:]) < np.mean(runs[0][:5])
    with pytest.raises(UsageError, match="labels must be a tensor of shape"):
        seg.train_segmenter(net, x, y[:, :8], steps=1)


def test_window_classifier_trains_on_padded_images():
    x, y = seg.shapes_dataset(8, size=12, seed=0)
    torch.manual_seed(0)
    model = seg.WindowClassifier(window=5, width=4).double()
    losses = seg.train_segmenter(model, x, y, steps=3, pad=2)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert seg.predict_labels(model, x, pad=2).shape == (8, 12, 12)


def test_accuracy_and_iou_on_a_hand_made_example():
    target = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 1]])
    assert seg.pixel_accuracy(pred, target) == 6 / 8
    iou = seg.iou_per_class(pred, target, 3)
    np.testing.assert_allclose(iou, [2 / 4, 3 / 4, 1 / 2])
    assert math.isnan(seg.iou_per_class(pred, target, 4)[3])
    with pytest.raises(UsageError, match="same shape"):
        seg.pixel_accuracy(pred, target[:1])
