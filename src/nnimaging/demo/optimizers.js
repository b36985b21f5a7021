// Browser twin of the demo compute function in nnimaging/optimizers.py (same keys, same numbers).
// It receives the control values `p` and the runtime's helper library `lib`. The updates are
// written with the same operations in the same order as the Python ones, so the paths agree to
// rounding.

var OPT_STEPS = 200;
var OPT_START = [-1.5, 2.5];
var VALLEY_CENTER = [1.0, 1.0];
var VALLEY_CURVATURES = [1.0, 10.0];
var VALLEY_LEVELS = [0.1, 0.4, 1.0, 2.0, 4.0, 7.0, 11.0, 16.0];
var ROSENBROCK_B = 10.0;
var ROSENBROCK_LEVELS = [0.05, 0.3, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0];
var OPT_BOUND = 4.0;
var OPT_LOSS_FLOOR = 1e-12, OPT_LOSS_CEILING = 1e12;
var ADAM_BETA2 = 0.999, ADAM_EPS = 1e-8;
var METHOD_OF = {"gradient descent": "gd", "momentum": "momentum", "Adam": "adam"};
var MU_NAME = {gd: "μ (unused)", momentum: "μ", adam: "β₁"};

function surfaceLoss(surface, th) {
  if (surface === "Rosenbrock") {
    var r = th[1] - th[0] * th[0];
    return (1.0 - th[0]) * (1.0 - th[0]) + ROSENBROCK_B * (r * r);
  }
  var dx = th[0] - VALLEY_CENTER[0], dy = th[1] - VALLEY_CENTER[1];
  return 0.5 * (VALLEY_CURVATURES[0] * (dx * dx) + VALLEY_CURVATURES[1] * (dy * dy));
}

function surfaceGradient(surface, th) {
  if (surface === "Rosenbrock") {    // (1 - x)² + b (y - x²)²
    var x = th[0], r = th[1] - x * x;
    return [-2.0 * (1.0 - x) - 4.0 * ROSENBROCK_B * x * r, 2.0 * ROSENBROCK_B * r];
  }
  return [VALLEY_CURVATURES[0] * (th[0] - VALLEY_CENTER[0]),
          VALLEY_CURVATURES[1] * (th[1] - VALLEY_CENTER[1])];
}

function product(beta, k) {          // beta**k as math.prod([beta] * k): not Math.pow, whose
  var out = 1;                       // last bit differs from C's pow for some (beta, k)
  for (var j = 0; j < k; j++) out *= beta;
  return out;
}

function optimizerPath(surface, method, lr, mu) {
  var th = OPT_START.slice(), first = [0, 0], second = [0, 0];
  var path = [th.slice()];
  for (var k = 1; k <= OPT_STEPS; k++) {
    if (Math.max(Math.abs(th[0]), Math.abs(th[1])) > OPT_BOUND) break;  // left the plot: stop
    var g = surfaceGradient(surface, th);
    for (var i = 0; i < 2; i++) {
      if (method === "adam") {       // beta1 = mu
        first[i] = mu * first[i] + (1 - mu) * g[i];
        second[i] = ADAM_BETA2 * second[i] + (1 - ADAM_BETA2) * g[i] * g[i];
        var mHat = first[i] / (1 - product(mu, k));
        var vHat = second[i] / (1 - product(ADAM_BETA2, k));
        th[i] = th[i] - lr * mHat / (Math.sqrt(vHat) + ADAM_EPS);
      } else {                       // heavy ball; gradient descent is mu = 0
        first[i] = (method === "momentum" ? mu : 0.0) * first[i] + g[i];
        th[i] = th[i] - lr * first[i];
      }
    }
    path.push(th.slice());
  }
  return path;
}

function optimizerPathsResult(p, lib) {
  var method = METHOD_OF[p.optimizer];
  var lr = parseFloat(Math.pow(10, p.log10_lr).toPrecision(3));   // as demo_learning_rate
  var path = optimizerPath(p.surface, method, lr, p.momentum);
  var px = [], py = [], steps = [], logLoss = [];
  path.forEach(function (th, k) {
    var loss = surfaceLoss(p.surface, th);
    if (isNaN(loss)) loss = OPT_LOSS_CEILING;
    px.push(th[0]); py.push(th[1]); steps.push(k);
    logLoss.push(Math.log10(Math.min(Math.max(loss, OPT_LOSS_FLOOR), OPT_LOSS_CEILING)));
  });
  var last = path[path.length - 1];
  var left = Math.max(Math.abs(last[0]), Math.abs(last[1])) > OPT_BOUND ||
             !(isFinite(last[0]) && isFinite(last[1]));
  var t = lib.linspace(0, 2 * Math.PI, 73), cx = [], cy = [];
  if (p.surface === "Rosenbrock") {  // x = 1 - √c cos t, then (y - x²)² = c sin²t / b
    ROSENBROCK_LEVELS.forEach(function (c) {
      t.forEach(function (s) {
        var x = 1.0 - Math.sqrt(c) * Math.cos(s);
        cx.push(x); cy.push(x * x + Math.sqrt(c / ROSENBROCK_B) * Math.sin(s));
      });
      cx.push(NaN); cy.push(NaN);
    });
  } else {
    VALLEY_LEVELS.forEach(function (c) {
      var rx = Math.sqrt(2 * c / VALLEY_CURVATURES[0]), ry = Math.sqrt(2 * c / VALLEY_CURVATURES[1]);
      t.forEach(function (s) {
        cx.push(VALLEY_CENTER[0] + rx * Math.cos(s)); cy.push(VALLEY_CENTER[1] + ry * Math.sin(s));
      });
      cx.push(NaN); cy.push(NaN);
    });
  }
  return {
    lr: lr, momentum: p.momentum, mu_name: MU_NAME[method],
    status: left ? "diverged: left the plot" : "after " + OPT_STEPS + " steps",
    path_x: px, path_y: py, steps: steps, log_loss: logLoss,
    n_steps: path.length - 1, final_log_loss: logLoss[logLoss.length - 1],
    contour_x: cx, contour_y: cy, min_x: [1.0], min_y: [1.0]
  };
}
