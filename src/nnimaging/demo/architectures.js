// Browser twin of relighting_result in nnimaging/architectures.py (same keys, same numbers).
// A unit sphere with a painted pattern, 49 basis lights (a light stage), and one light moved
// by the sliders: relit = A x with x a normalized lobe of weights around the light direction.

var RELIGHT_SIZE = 48;                                  // DEMO_SIZE
var RELIGHT_AZIMUTHS = [-180, -150, -120, -90, -60, -30, 0, 30, 60, 90, 120, 150];
var RELIGHT_ELEVATIONS = [-30, 0, 30, 60];
var RELIGHT_KAPPA = 20.0;                               // LOBE_SHARPNESS
var RELIGHT_FREQUENCY = 4;

function relightDirection(azimuth, elevation) {
  var az = azimuth * (Math.PI / 180), el = elevation * (Math.PI / 180);
  return [Math.cos(el) * Math.sin(az), Math.sin(el), Math.cos(el) * Math.cos(az)];
}

function relightStage() {
  var dirs = [];
  for (var e = 0; e < RELIGHT_ELEVATIONS.length; e++)
    for (var a = 0; a < RELIGHT_AZIMUTHS.length; a++)
      dirs.push(relightDirection(RELIGHT_AZIMUTHS[a], RELIGHT_ELEVATIONS[e]));
  dirs.push([0, 1, 0]);
  return dirs;
}

function relightDot(n, l) { return n[0] * l[0] + n[1] * l[1] + n[2] * l[2]; }

function relightingResult(p, lib) {
  var size = RELIGHT_SIZE, stage = relightStage(), K = stage.length;
  var target = relightDirection(p.azimuth, p.elevation);
  // lobe weights x_k = exp(kappa (l_k . t - 1)) / sum
  var weights = [], total = 0;
  for (var k = 0; k < K; k++) { weights.push(Math.exp(RELIGHT_KAPPA * (relightDot(stage[k], target) - 1))); total += weights[k]; }
  for (k = 0; k < K; k++) weights[k] /= total;
  var relit = [], direct = [], errSum = 0, count = 0;
  for (var i = 0; i < size; i++) {
    var rowR = [], rowD = [];
    var v = -((i + 0.5) * (2 / size) - 1);
    for (var j = 0; j < size; j++) {
      var u = (j + 0.5) * (2 / size) - 1;
      var r2 = u * u + v * v, inside = r2 <= 1;
      if (!inside) { rowR.push(0); rowD.push(0); continue; }
      var n = [u, v, Math.sqrt(Math.max(1 - r2, 0))];
      var lon = Math.atan2(n[0], n[2]), lat = Math.asin(Math.min(Math.max(n[1], -1), 1));
      var albedo = 0.6 + 0.3 * Math.cos(RELIGHT_FREQUENCY * lon) * Math.cos(RELIGHT_FREQUENCY * lat);
      var b = 0;
      for (k = 0; k < K; k++) b += albedo * Math.max(relightDot(n, stage[k]), 0) * weights[k];
      var d = albedo * Math.max(relightDot(n, target), 0);
      rowR.push(b); rowD.push(d);
      errSum += Math.abs(b - d); count += 1;
    }
    relit.push(rowR); direct.push(rowD);
  }
  var ks = [];
  for (k = 0; k < K; k++) ks.push(k);
  return { relit: relit, direct: direct, k: ks, weights: weights, error: errSum / count };
}
