// Browser twins of the compute functions in nnimaging/approximation.py (same keys, same numbers).
// Each receives the control values `p` and the runtime's helper library `lib`.

var STEEPNESS = 1000;

function stepAt(x, s) { return lib.sigmoid(STEEPNESS * (x - s)); }

function rectAt(x, start, stop, height) { return height * stepAt(x, start) - height * stepAt(x, stop); }

function activationAt(fn, z, alpha) {
  if (fn === "step") return z >= 0 ? 1 : 0;
  if (fn === "sigmoid") return lib.sigmoid(z);
  if (fn === "tanh") return Math.tanh(z);
  if (fn === "ReLU") return Math.max(z, 0);
  if (fn === "leaky ReLU") return z >= 0 ? z : alpha * z;
  throw new Error("unknown activation " + fn);
}

function derivativeAt(fn, z, alpha) {
  if (fn === "step") return 0;
  if (fn === "sigmoid") { var s = lib.sigmoid(z); return s * (1 - s); }
  if (fn === "tanh") { var t = Math.tanh(z); return 1 - t * t; }
  if (fn === "ReLU") return z > 0 ? 1 : 0;
  if (fn === "leaky ReLU") return z > 0 ? 1 : alpha;
  throw new Error("unknown activation " + fn);
}

function activationResult(p) {
  var z = lib.linspace(-4, 4, 801);
  return {
    z: z,
    f: z.map(function (v) { return activationAt(p.fn, v, p.alpha); }),
    df: z.map(function (v) { return derivativeAt(p.fn, v, p.alpha); })
  };
}

function sigmoidResult(p) {
  var x = lib.linspace(-0.5, 1.5, 801);
  return { x: x, y: x.map(function (v) { return lib.sigmoid(p.w * v + p.b); }), s: -p.b / p.w };
}

function twoNeuronsResult(p) {
  var x = lib.linspace(-0.2, 1.2, 1401);
  var n1 = x.map(function (v) { return p.w1 * stepAt(v, p.s1); });
  var n2 = x.map(function (v) { return p.w2 * stepAt(v, p.s2); });
  return { x: x, n1: n1, n2: n2, y: n1.map(function (v, i) { return v + n2[i]; }) };
}

function twoRectsResult(p) {
  var x = lib.linspace(-0.2, 1.2, 1401);
  var r1 = x.map(function (v) { return rectAt(v, p.s11, p.s12, p.h1); });
  var r2 = x.map(function (v) { return rectAt(v, p.s21, p.s22, p.h2); });
  return { x: x, r1: r1, r2: r2, y: r1.map(function (v, i) { return v + r2[i]; }) };
}

var N_MAX = 50;

function targetCurve(x) {
  return x >= 0 && x <= 1 ? 0.6 * Math.sin(2 * Math.PI * x) + 0.3 * Math.sin(5 * Math.PI * x) : 0;
}

function rectApproximation(n, x) {
  var edges = lib.linspace(0, 1, n + 1);
  var out = lib.zeros(x.length);
  for (var k = 0; k < n; k++) {
    var h = targetCurve((edges[k] + edges[k + 1]) / 2);
    for (var i = 0; i < x.length; i++) out[i] += rectAt(x[i], edges[k], edges[k + 1], h);
  }
  return out;
}

function maxError(a, b) {
  var m = 0;
  for (var i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

var rectErrors = null; // the error curve does not depend on the slider: compute it once

function rectSumResult(p) {
  var x = lib.linspace(-0.1, 1.1, 1201);
  var target = x.map(targetCurve);
  var ns = lib.range(N_MAX).map(function (i) { return i + 1; });
  if (rectErrors === null) rectErrors = ns.map(function (k) { return maxError(rectApproximation(k, x), target); });
  var approx = rectApproximation(p.n, x);
  return {
    x: x, n: p.n, target: target, approx: approx, err: maxError(approx, target),
    ns: ns, errors: rectErrors, n_now: [p.n], err_now: [rectErrors[p.n - 1]]
  };
}

// ReLU networks as piecewise-linear approximators: hats of three ReLUs.
var HAT_N_MAX = 50, HAT_FIT_FROM = 10;

function relu(z) { return Math.max(z, 0); }

function hatAt(x, left, center, right) {
  var up = 1 / (center - left), down = 1 / (right - center);
  return up * relu(x - left) - (up + down) * relu(x - center) + down * relu(x - right);
}

var HAT_TARGETS = {
  "smooth": function (x) { return 0.6 * Math.sin(2 * Math.PI * x) + 0.3 * Math.sin(5 * Math.PI * x); },
  "kink": function (x) { return 0.8 - 1.6 * Math.abs(x - 1 / Math.PI); },
  "square root": function (x) { return 0.9 * Math.sqrt(Math.max(x, 0)) - 0.45; }
};

function hatSum(x, knots, values) {
  var m = knots.length;
  var edges = [2 * knots[0] - knots[1]].concat(knots, [2 * knots[m - 1] - knots[m - 2]]);
  var out = lib.zeros(x.length);
  for (var k = 0; k < m; k++) {
    for (var i = 0; i < x.length; i++) out[i] += values[k] * hatAt(x[i], edges[k], edges[k + 1], edges[k + 2]);
  }
  return out;
}

function slopeOfFit(u, v) { // least-squares slope of v against u
  var n = u.length, mu = 0, mv = 0, suv = 0, suu = 0;
  for (var i = 0; i < n; i++) { mu += u[i] / n; mv += v[i] / n; }
  for (var j = 0; j < n; j++) { suv += (u[j] - mu) * (v[j] - mv); suu += (u[j] - mu) * (u[j] - mu); }
  return suv / suu;
}

var hatErrors = {}; // per target, the error curve does not depend on N: compute it once

function hatSumResult(p) {
  var f = HAT_TARGETS[p.target];
  if (!f) throw new Error("unknown target " + p.target);
  var x = lib.linspace(0, 1, 1001), target = x.map(f);
  var ns = lib.range(HAT_N_MAX - 1).map(function (i) { return i + 2; });
  if (!hatErrors[p.target]) {
    hatErrors[p.target] = ns.map(function (k) {
      var kn = lib.linspace(0, 1, k);
      return maxError(hatSum(x, kn, kn.map(f)), target);
    });
  }
  var errors = hatErrors[p.target];
  var knots = lib.linspace(0, 1, p.n), values = knots.map(f);
  var approx = hatSum(x, knots, values);
  var logN = ns.map(Math.log10), logErr = errors.map(Math.log10);
  var last = ns.length - 1;
  var fitU = [], fitV = [];
  for (var i = 0; i < ns.length; i++) {
    if (ns[i] >= HAT_FIT_FROM) { fitU.push(Math.log(ns[i])); fitV.push(Math.log(errors[i])); }
  }
  return {
    x: x, n: p.n, units: 3 * p.n, target: target, approx: approx, err: maxError(approx, target),
    knots: knots, values: values, log_n: logN, log_err: logErr,
    ref: logN.map(function (v) { return logErr[last] - 2 * (v - logN[last]); }),
    slope: slopeOfFit(fitU, fitV),
    log_n_now: [logN[p.n - 2]], log_err_now: [logErr[p.n - 2]]
  };
}
