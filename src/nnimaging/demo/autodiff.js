// Browser twins of the demo compute functions in nnimaging/autodiff.py (same keys, same numbers).
// Each receives the control values `p` and the runtime's helper library `lib`.

var GD_CURVATURES = [1.0, 10.0];
var GD_STEPS = 40;
var GD_RADIUS = 2.5;
var GD_BOUND = 4.0;
var GD_LEVELS = [0.125, 0.5, 1.125, 2.0, 3.125, 4.5, 6.125];
var LOSS_FLOOR = 1e-12;
var GRAPH_NODES = [1.0, 5.0, 9.0];

function quadraticLoss(th) {
  return 0.5 * (GD_CURVATURES[0] * (th[0] * th[0]) + GD_CURVATURES[1] * (th[1] * th[1]));
}

function gradientDescentResult(p, lib) {
  var lam = GD_CURVATURES;
  var lr = Math.pow(10, p.log10_lr);
  var a = p.start_angle * Math.PI / 180;
  var th = [GD_RADIUS * Math.cos(a), GD_RADIUS * Math.sin(a)];
  var px = [th[0]], py = [th[1]];
  for (var k = 0; k < GD_STEPS; k++) {
    if (Math.max(Math.abs(th[0]), Math.abs(th[1])) > GD_BOUND) break;  // first iterate outside: stop
    th = [th[0] - lr * (lam[0] * th[0]), th[1] - lr * (lam[1] * th[1])];
    px.push(th[0]); py.push(th[1]);
  }
  var steps = [], logLoss = [];
  for (var i = 0; i < px.length; i++) {
    steps.push(i);
    logLoss.push(Math.log10(Math.max(quadraticLoss([px[i], py[i]]), LOSS_FLOOR)));
  }
  var rho = Math.max(Math.abs(1 - lr * lam[0]), Math.abs(1 - lr * lam[1]));
  var t = lib.linspace(0, 2 * Math.PI, 97), cx = [], cy = [];
  GD_LEVELS.forEach(function (c) {
    var rx = Math.sqrt(2 * c / lam[0]), ry = Math.sqrt(2 * c / lam[1]);
    t.forEach(function (s) { cx.push(rx * Math.cos(s)); cy.push(ry * Math.sin(s)); });
    cx.push(NaN); cy.push(NaN);
  });
  return {
    lr: lr, rho: rho, lr_max: 2 / Math.max(lam[0], lam[1]),
    status: rho >= 1 ? "diverges" : "converges",
    path_x: px, path_y: py, steps: steps, log_loss: logLoss,
    n_steps: px.length - 1, final_log_loss: logLoss[logLoss.length - 1],
    contour_x: cx, contour_y: cy, min_x: [0.0], min_y: [0.0]
  };
}

function logSquareGraphResult(p, lib) {
  // forward pass, keeping the intermediate values
  var x = p.x, v1 = Math.log(x), v2 = v1 * v1;
  // backward pass: seed dy/dv2 = 1, then the chain rule in reverse order
  var gradV2 = 1.0, gradV1 = 2.0 * v1 * gradV2, gradX = (1.0 / x) * gradV1;
  var xs = lib.linspace(0.1, 5.0, 197);
  var tx = [x - 1.0, x + 1.0];
  var a = GRAPH_NODES[0], b = GRAPH_NODES[1], c = GRAPH_NODES[2];
  return {
    x: x, v1: v1, v2: v2, grad_v2: gradV2, grad_v1: gradV1, grad_x: gradX,
    dv1_dx: 1.0 / x, dv2_dv1: 2.0 * v1, closed_form: 2.0 * Math.log(x) / x,
    node_x: GRAPH_NODES.slice(), node_y: [2.0, 2.0, 2.0],
    edge_x: [a, c], edge_y: [2.0, 2.0],
    fwd_x: [b - 0.8, b - 0.5, b - 0.8, NaN, c - 0.8, c - 0.5, c - 0.8],
    fwd_y: [2.15, 2.0, 1.85, NaN, 2.15, 2.0, 1.85],
    back_x: [a, c], back_y: [1.2, 1.2],
    head_x: [a + 0.8, a + 0.5, a + 0.8, NaN, b + 0.8, b + 0.5, b + 0.8],
    head_y: [1.35, 1.2, 1.05, NaN, 1.35, 1.2, 1.05],
    curve_x: xs, curve_y: xs.map(function (s) { var l = Math.log(s); return l * l; }),
    point_x: [x], point_y: [v2],
    tangent_x: tx, tangent_y: tx.map(function (s) { return v2 + gradX * (s - x); })
  };
}
