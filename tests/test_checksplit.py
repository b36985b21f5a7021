"""The splitting of a solution cell into the student's gap and its checks (``nnimaging.checksplit``)."""

from __future__ import annotations

from nnimaging import checksplit
from nnimaging.checksplit import MARKER, split_cell


def test_marker_splits_verbatim():
    split = split_cell(f"x = compute()\ny = 2 * x\n{MARKER}\nassert y == 4  # keep\n")
    assert split.clean and split.solution == "x = compute()\ny = 2 * x"
    assert split.checks == "assert y == 4  # keep" and split.todo == ("y",)


def test_givens_stay_and_checks_lose_their_comments():
    split = split_cell("w, s = 40.0, 0.3\nb = -w * s   # the answer\nprint(b)\n"
                       "assert np.isclose(sigmoid(w * s + b), 0.5)   # exactly one half\n")
    assert split.clean and split.givens == "w, s = 40.0, 0.3"
    assert split.solution == "b = -w * s   # the answer\nprint(b)"
    assert split.checks == "assert np.isclose(sigmoid(w * s + b), 0.5)" and split.todo == ("b",)


def test_helpers_go_with_the_checks():
    source = ("side = size(227, 11)\nparams = count(3, 96)\nprint(side, params)\n"
              "layer = nn.Conv2d(3, 96, 11, stride=4)\n"
              "assert layer(torch.zeros(1, 3, 227, 227)).shape[-1] == side\n"
              "assert params == sum(p.numel() for p in layer.parameters())\n")
    split = split_cell(source)
    assert split.clean and split.todo == ("params", "side")
    assert "layer = nn.Conv2d" in split.checks and "layer" not in split.solution
    assert "print(side, params)" in split.solution


def test_results_after_the_checks_stay_in_the_solution():
    source = ("confusion = table(predicted)\nassert confusion.sum() == n\n"
              "worst = confusion.argmax()\nprint(worst)\n"
              "upstream = torch.randn(5)\n(fixed,) = grad(f(z), z, upstream)\n"
              "torch.testing.assert_close(fixed, expected)\nprint('passed')\n")
    split = split_cell(source)
    assert split.clean
    assert split.solution.splitlines() == ["confusion = table(predicted)", "worst = confusion.argmax()",
                                          "print(worst)"]
    assert split.checks.splitlines() == ["assert confusion.sum() == n", "upstream = torch.randn(5)",
                                        "(fixed,) = grad(f(z), z, upstream)",
                                        "torch.testing.assert_close(fixed, expected)", "print('passed')"]


def test_a_loop_of_checks_with_helpers_inside_is_a_check():
    source = ("def pool(x, k):\n    return x[::k]\n\npatch = load()[:64]\nsizes = [2, 3]\n"
              "for k in sizes:\n    ref = torch_pool(patch, k)\n    assert_close(pool(patch, k), ref)\n")
    split = split_cell(source)
    assert split.clean and split.todo == ("pool",) and split.solution.startswith("def pool")
    assert "patch = load()[:64]" in split.checks


def test_cells_that_do_not_split_cleanly_become_one_gap():
    looped = split_cell("for g in (1e-3, 1.0):\n    step = adam(g)\n    assert abs(step) <= 1\n"
                        "    print(step)\n")
    assert not looped.clean and "loop" in looped.reason and looped.checks == ""
    unrelated = split_cell("for d in range(3):\n    assert field(d) == 2 * d + 1\nsmallest = 20\n"
                           "h = measure()\nassert h == 41\nprint(smallest)\n")
    assert not unrelated.clean and "nothing the solution computes" in unrelated.reason
    assert "assert h == 41" in unrelated.checks and unrelated.todo == ("h",)
    assert "smallest = 20" in unrelated.solution
    none = split_cell("x = 1 + 1\nprint(x)\n")
    assert not none.clean and none.checks == "" and none.todo == ()


def test_names_read_bound_and_changed():
    src = ("def f(a):\n    b = a + c\n    return b\n"
           "for i in range(3):\n    total += i * d\nmodel.eval()\ntrain(net, steps)\nplot(ax, img)\n")
    assert checksplit.free_names(src) == {"c", "total", "d", "model", "train", "net", "steps", "plot",
                                        "ax", "img"}
    assert checksplit.bound_names(src) == {"f", "i", "total"}
    assert checksplit.changed_names(src) == {"total", "model", "net"}
