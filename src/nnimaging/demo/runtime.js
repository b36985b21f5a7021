/* nnimaging demo runtime: draws the book's interactive figures in the browser, no kernel needed.
 *
 * Each demo is a <div class="nnimaging-demo"> holding a JSON description (written by
 * nnimaging.demo.Demo.to_html). This script builds the controls, computes the figure data
 * (with the demo's JavaScript twin, or by picking a precomputed frame) and draws the panels as
 * SVG, mirroring nnimaging/demo/render.py. It is on a page once: the book's site serves it as
 * _static/nnimaging-runtime.js, a notebook carries it in its first demo output. It draws the demos
 * on the page when it loads; each demo output then calls nnimagingDemo.mountAll() for itself.
 * Loading it twice on a page is harmless. It must not contain the characters "</" + "script".
 */
(function () {
  "use strict";
  if (window.nnimagingDemo) return;

  var SVGNS = "http://www.w3.org/2000/svg";
  var WIDTH = 720;
  var counter = 0;

  // ------------------------------------------------------------------ helpers for JS twins
  var lib = {
    linspace: function (a, b, n) {
      var out = new Array(n);
      for (var i = 0; i < n; i++) out[i] = n === 1 ? a : a + (b - a) * i / (n - 1);
      if (n > 1) out[n - 1] = b;
      return out;
    },
    sigmoid: function (z) { return 0.5 * (1 + Math.tanh(z / 2)); },
    range: function (n) { var out = new Array(n); for (var i = 0; i < n; i++) out[i] = i; return out; },
    zeros: function (n) { var out = new Array(n); for (var i = 0; i < n; i++) out[i] = 0; return out; },
    max: function (arr) { var m = -Infinity; for (var i = 0; i < arr.length; i++) if (arr[i] > m) m = arr[i]; return m; },
    min: function (arr) { var m = Infinity; for (var i = 0; i < arr.length; i++) if (arr[i] < m) m = arr[i]; return m; }
  };

  // ------------------------------------------------------------------ formatting (as text.py)
  // One rule with nnimaging/demo/text.py's format_value (see its docstring): specs '', 'd', '.Nf',
  // '.Ne', '.N%'; the exact binary value rounded half to even, as Python's format(); no minus sign
  // on a result that rounds to zero; True/False, "" for null and NaN, inf and -inf.
  var BIG5 = BigInt(5);
  function exactDigits(a) { // a finite, >= 0: its exact decimal digits d, with p of them before the point
    var m = a, e = 0;
    while (m !== Math.floor(m)) { m *= 2; e++; } // a = m / 2^e, m an integer (doubling is exact)
    var d = (BigInt(m) * BIG5 ** BigInt(e)).toString(); // a = d / 10^e
    if (d.length <= e) d = "0".repeat(e - d.length + 1) + d;
    return { d: d, p: d.length - e };
  }
  function roundDigits(d, keep) { // the first `keep` digits of d, rounded half to even (may grow by one)
    var head = d.length >= keep ? d.slice(0, keep) : d + "0".repeat(keep - d.length);
    var rest = d.slice(keep), up = false;
    if (rest.length && rest[0] > "5") up = true;
    else if (rest[0] === "5") up = /[1-9]/.test(rest.slice(1)) || (+head[keep - 1] || 0) % 2 === 1;
    if (!up) return head;
    var digits = head.split(""), i = keep - 1;
    while (i >= 0 && digits[i] === "9") { digits[i] = "0"; i--; }
    if (i < 0) digits.unshift("1"); else digits[i] = String(+digits[i] + 1);
    return digits.join("");
  }
  function negative(v) { return v < 0 || (v === 0 && 1 / v < 0); }
  function unsign(text) { return /^-[0.]*(e[+-]\d+)?%?$/.test(text) ? text.slice(1) : text; }
  function fixed(v, f) { // Python's format(v, ".{f}f")
    var x = exactDigits(Math.abs(v)), r = roundDigits(x.d, x.p + f), n = r.length - f;
    var whole = r.slice(0, n).replace(/^0+(?=\d)/, "");
    return (negative(v) ? "-" : "") + whole + (f > 0 ? "." + r.slice(n) : "");
  }
  function exponent(e) { return "e" + (e < 0 ? "-" : "+") + (Math.abs(e) < 10 ? "0" : "") + Math.abs(e); }
  function expo(v, f) { // Python's format(v, ".{f}e")
    var a = Math.abs(v), r, e = 0;
    if (a === 0) r = "0".repeat(f + 1);
    else {
      var x = exactDigits(a), k = x.d.search(/[1-9]/);
      r = roundDigits(x.d.slice(k), f + 1);
      e = x.p - k - 1;
      if (r.length > f + 1) { e++; r = r.slice(0, f + 1); }
    }
    return (negative(v) ? "-" : "") + r[0] + (f > 0 ? "." + r.slice(1) : "") + exponent(e);
  }
  function pyRepr(v) { // Python's repr(v): shortest digits that read back as v
    var parts = Math.abs(v).toExponential().split("e"), d = parts[0].replace(".", ""), e = parseInt(parts[1], 10);
    var s;
    if (e < -4 || e >= 16) s = d[0] + (d.length > 1 ? "." + d.slice(1) : "") + exponent(e);
    else if (e < 0) s = "0." + "0".repeat(-e - 1) + d;
    else if (d.length > e + 1) s = d.slice(0, e + 1) + "." + d.slice(e + 1);
    else s = d + "0".repeat(e + 1 - d.length) + ".0";
    return (negative(v) ? "-" : "") + s;
  }
  function formatValue(v, spec) {
    if (typeof v === "string") return v;
    if (typeof v === "boolean") return v ? "True" : "False";
    if (v === null || v === undefined) return "";
    v = Number(v);
    if (isNaN(v)) return "";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    spec = spec || "";
    if (spec === "") return Number.isInteger(v) && Math.abs(v) < 1e16 ? (v === 0 ? "0" : String(v)) : pyRepr(v);
    if (spec === "d") return unsign(fixed(v, 0));
    var m = /^\.(\d{1,2})([fe%])$/.exec(spec);
    if (!m) throw new Error("unsupported format spec " + JSON.stringify(spec));
    var digits = parseInt(m[1], 10);
    if (m[2] === "f") return unsign(fixed(v, digits));
    if (m[2] === "%") return isFinite(v * 100) ? unsign(fixed(v * 100, digits) + "%") : formatValue(v * 100, "") + "%";
    return unsign(expo(v, digits));
  }
  function fillTemplate(template, values) {
    return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g, function (_, key, spec) {
      return formatValue(values[key], spec || "");
    });
  }
  function valueOf(ref, result) { return typeof ref === "string" ? result[ref] : ref; }
  function toNum(v) { return v === null || v === undefined ? NaN : v; }

  // ------------------------------------------------------------------ SVG helpers
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function r2(x) { return Math.round(x * 100) / 100; }
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var span = hi - lo, raw = span / Math.max(count, 1);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10], step = mag;
    for (var i = 0; i < steps.length; i++) { if (steps[i] * mag >= raw) { step = steps[i] * mag; break; } }
    var start = Math.ceil(lo / step - 1e-9) * step, ticks = [];
    for (var t = start; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    var decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
    return { ticks: ticks, decimals: Math.min(decimals, 6) };
  }
  function extent(values, lo, hi) {
    for (var i = 0; i < values.length; i++) {
      var v = toNum(values[i]);
      if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    return [lo, hi];
  }
  function flat(v) { return Array.isArray(v) ? v : [v]; }

  function dataRange(panel, result, axis) {
    var lim = axis === "x" ? panel.xlim : panel.ylim;
    if (lim) return lim.slice();
    var lo = Infinity, hi = -Infinity, e;
    panel.marks.forEach(function (m) {
      if ((m.type === "line" || m.type === "points" || m.type === "bars") && result[m[axis]] !== undefined) {
        e = extent(flat(result[m[axis]]), lo, hi); lo = e[0]; hi = e[1];
        if (m.type === "bars" && axis === "y") { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
        if (m.type === "bars" && axis === "x") { lo -= m.width / 2; hi += m.width / 2; }
      }
      if (m.type === "vline" && axis === "x") { e = extent([toNum(valueOf(m.x, result))], lo, hi); lo = e[0]; hi = e[1]; }
      if (m.type === "hline" && axis === "y") { e = extent([toNum(valueOf(m.y, result))], lo, hi); lo = e[0]; hi = e[1]; }
      if (m.type === "text" && m.coords === "data") {
        e = extent([toNum(valueOf(m[axis], result))], lo, hi); lo = e[0]; hi = e[1];
      }
    });
    if (!isFinite(lo) || !isFinite(hi)) { lo = 0; hi = 1; }
    if (hi === lo) { lo -= 0.5; hi += 0.5; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  // ------------------------------------------------------------------ drawing one panel
  function drawPanel(spec, panel, result, box, uid, colors) {
    var out = [];
    var title = panel.title ? fillTemplate(panel.title, result) : "";
    var ml = panel.axes ? (panel.ylabel ? 62 : 48) : 6, mr = 12, mt = title ? 26 : 10, mb = panel.axes ? (panel.xlabel ? 44 : 26) : 6;
    var x0 = box.x + ml, y0 = box.y + mt, w = box.w - ml - mr, h = box.h - mt - mb;
    if (title) out.push('<text x="' + r2(box.x + box.w / 2) + '" y="' + r2(box.y + 16) + '" text-anchor="middle" class="nnd-title">' + esc(title) + "</text>");
    var colorIndex = 0;
    function nextColor(m) { if (m.color) return m.color; var c = colors[colorIndex % colors.length]; colorIndex++; return c; }

    // panels without axes: images and grids fill the box, keeping aspect ratio
    var special = panel.marks.filter(function (m) { return m.type === "image" || m.type === "grid"; });
    if (!panel.axes && special.length) {
      special.forEach(function (m) {
        if (m.type === "image") out.push(drawImage(m, result[m.key], x0, y0, w, h));
        else out.push(drawGrid(m, result, x0, y0, w, h));
      });
    }
    var xr = dataRange(panel, result, "x"), yr = dataRange(panel, result, "y");
    function sx(v) { return x0 + (v - xr[0]) / (xr[1] - xr[0]) * w; }
    function sy(v) { return y0 + h - (v - yr[0]) / (yr[1] - yr[0]) * h; }
    var clip = "nndclip" + uid + "_" + box.i;
    out.push('<clipPath id="' + clip + '"><rect x="' + r2(x0) + '" y="' + r2(y0) + '" width="' + r2(w) + '" height="' + r2(h) + '"/></clipPath>');
    if (panel.axes) {
      var xt = niceTicks(xr[0], xr[1], 6), yt = niceTicks(yr[0], yr[1], 5);
      xt.ticks.forEach(function (t) {
        var X = r2(sx(t));
        out.push('<line x1="' + X + '" x2="' + X + '" y1="' + r2(y0) + '" y2="' + r2(y0 + h) + '" class="nnd-grid"/>');
        out.push('<text x="' + X + '" y="' + r2(y0 + h + 17) + '" text-anchor="middle" class="nnd-tick">' + esc(fixed(t, xt.decimals)) + "</text>");
      });
      yt.ticks.forEach(function (t) {
        var Y = r2(sy(t));
        out.push('<line x1="' + r2(x0) + '" x2="' + r2(x0 + w) + '" y1="' + Y + '" y2="' + Y + '" class="nnd-grid"/>');
        out.push('<text x="' + r2(x0 - 5) + '" y="' + r2(sy(t) + 4) + '" text-anchor="end" class="nnd-tick">' + esc(fixed(t, yt.decimals)) + "</text>");
      });
      out.push('<rect x="' + r2(x0) + '" y="' + r2(y0) + '" width="' + r2(w) + '" height="' + r2(h) + '" class="nnd-frame"/>');
      if (panel.xlabel) out.push('<text x="' + r2(x0 + w / 2) + '" y="' + r2(y0 + h + 37) + '" text-anchor="middle" class="nnd-label">' + esc(panel.xlabel) + "</text>");
      if (panel.ylabel) out.push('<text transform="translate(' + r2(box.x + 12) + "," + r2(y0 + h / 2) + ') rotate(-90)" text-anchor="middle" class="nnd-label">' + esc(panel.ylabel) + "</text>");
    }
    var legend = [];
    out.push('<g clip-path="url(#' + clip + ')">');
    panel.marks.forEach(function (m) {
      var color;
      if (m.type === "line") {
        color = nextColor(m);
        var xs = flat(result[m.x]), ys = flat(result[m.y]), d = "", pen = false;
        for (var i = 0; i < xs.length; i++) {
          var X = toNum(xs[i]), Y = toNum(ys[i]);
          if (!isFinite(X) || !isFinite(Y)) { pen = false; continue; }
          var px = sx(X), py = sy(Y);
          py = Math.max(Math.min(py, y0 + h + 1e4), y0 - 1e4); // keep huge values drawable
          d += (pen ? "L" : "M") + r2(px) + " " + r2(py);
          pen = true;
        }
        out.push('<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="' + m.width + '"' + (m.dash ? ' stroke-dasharray="6 4"' : "") + ' class="nnd-line"/>');
      } else if (m.type === "points") {
        color = nextColor(m);
        var px2 = flat(result[m.x]), py2 = flat(result[m.y]);
        for (var j = 0; j < px2.length; j++) {
          if (!isFinite(toNum(px2[j])) || !isFinite(toNum(py2[j]))) continue;
          out.push('<circle cx="' + r2(sx(px2[j])) + '" cy="' + r2(sy(py2[j])) + '" r="' + m.size / 1.6 + '" fill="' + color + '"/>');
        }
      } else if (m.type === "bars") {
        color = nextColor(m);
        var bx = flat(result[m.x]), by = flat(result[m.y]);
        for (var k = 0; k < bx.length; k++) {
          var top = sy(Math.max(by[k], 0)), bottom = sy(Math.min(by[k], 0));
          out.push('<rect x="' + r2(sx(bx[k] - m.width / 2)) + '" y="' + r2(top) + '" width="' + r2(sx(bx[k] + m.width / 2) - sx(bx[k] - m.width / 2)) + '" height="' + r2(Math.max(bottom - top, 0)) + '" fill="' + color + '"/>');
        }
      } else if (m.type === "vline") {
        color = m.color;
        var vx = r2(sx(toNum(valueOf(m.x, result))));
        out.push('<line x1="' + vx + '" x2="' + vx + '" y1="' + r2(y0) + '" y2="' + r2(y0 + h) + '" stroke="' + color + '" stroke-width="1.2"' + (m.dash ? ' stroke-dasharray="5 4"' : "") + "/>");
      } else if (m.type === "hline") {
        color = m.color;
        var hy = r2(sy(toNum(valueOf(m.y, result))));
        out.push('<line x1="' + r2(x0) + '" x2="' + r2(x0 + w) + '" y1="' + hy + '" y2="' + hy + '" stroke="' + color + '" stroke-width="1.2"' + (m.dash ? ' stroke-dasharray="5 4"' : "") + "/>");
      }
      if (m.label && color) legend.push([m.label, color, m.type]);
    });
    out.push("</g>");
    panel.marks.forEach(function (m) {
      if (m.type !== "text") return;
      var tx = toNum(valueOf(m.x, result)), ty = toNum(valueOf(m.y, result));
      var X = m.coords === "axes" ? x0 + tx * w : sx(tx), Y = m.coords === "axes" ? y0 + (1 - ty) * h : sy(ty);
      out.push('<text x="' + r2(X) + '" y="' + r2(Y + m.size * 0.35) + '" text-anchor="' + m.anchor + '" fill="' + m.color + '" font-size="' + m.size + '" class="nnd-text">' + esc(fillTemplate(m.template, result)) + "</text>");
    });
    if (panel.legend && legend.length) {
      var lw = 14 + 7 * Math.max.apply(null, legend.map(function (l) { return l[0].length; })) + 24;
      var lx = x0 + w - lw - 6, ly = y0 + 6;
      out.push('<rect x="' + r2(lx) + '" y="' + r2(ly) + '" width="' + r2(lw) + '" height="' + (legend.length * 16 + 6) + '" class="nnd-legend"/>');
      legend.forEach(function (l, i) {
        var yy = ly + 13 + i * 16;
        out.push('<line x1="' + r2(lx + 5) + '" x2="' + r2(lx + 25) + '" y1="' + r2(yy - 4) + '" y2="' + r2(yy - 4) + '" stroke="' + l[1] + '" stroke-width="3"/>');
        out.push('<text x="' + r2(lx + 30) + '" y="' + r2(yy) + '" class="nnd-tick">' + esc(l[0]) + "</text>");
      });
    }
    return out.join("");
  }

  function drawImage(m, value, x0, y0, w, h) {
    var href = value;
    var rows, cols;
    if (typeof value !== "string") { // a 2-D array computed in the browser: encode through a canvas
      rows = value.length; cols = value[0].length;
      var canvas = document.createElement("canvas");
      canvas.width = cols; canvas.height = rows;
      var ctx = canvas.getContext("2d"), img = ctx.createImageData(cols, rows);
      for (var r = 0; r < rows; r++) for (var c = 0; c < cols; c++) {
        var v = Math.round(Math.min(Math.max((toNum(value[r][c]) - m.vmin) / (m.vmax - m.vmin), 0), 1) * 255) || 0;
        var o = 4 * (r * cols + c);
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v; img.data[o + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      href = canvas.toDataURL("image/png");
    }
    return '<image x="' + r2(x0) + '" y="' + r2(y0) + '" width="' + r2(w) + '" height="' + r2(h) + '" preserveAspectRatio="xMidYMid meet" style="image-rendering:pixelated" href="' + href + '"/>';
  }

  function drawGrid(m, result, x0, y0, w, h) {
    var values = result[m.key];
    if (!Array.isArray(values[0])) values = [values];
    var mask = m.highlight ? result[m.highlight] : null;
    if (mask && !Array.isArray(mask[0])) mask = [mask];
    var rows = values.length, cols = values[0].length;
    var cell = Math.min(w / cols, h / rows, 44);
    var gx = x0 + (w - cell * cols) / 2, gy = y0 + (h - cell * rows) / 2, out = [];
    for (var r = 0; r < rows; r++) for (var c = 0; c < cols; c++) {
      var on = mask && mask[r][c];
      out.push('<rect x="' + r2(gx + c * cell) + '" y="' + r2(gy + r * cell) + '" width="' + r2(cell) + '" height="' + r2(cell) + '" fill="' + (on ? m.color : "#ffffff") + '" class="nnd-cell"/>');
      var txt = formatValue(values[r][c], m.fmt);
      if (txt !== "") out.push('<text x="' + r2(gx + (c + 0.5) * cell) + '" y="' + r2(gy + (r + 0.5) * cell + 4) + '" text-anchor="middle" font-size="' + Math.min(12, cell / 3) + '" class="nnd-celltext">' + esc(txt) + "</text>");
    }
    return out.join("");
  }

  // ------------------------------------------------------------------ one demo
  function Demo(el, spec) {
    this.el = el;
    this.spec = spec;
    this.uid = ++counter;
    this.index = spec.controls.map(function (c) { return c.index; });
    this.compute = null;
    if (spec.js) {
      this.compute = new Function("lib", spec.js.source + "\nreturn " + spec.js.entry + ";")(lib);
    }
    this.build();
    this.update();
  }
  Demo.prototype.params = function () {
    var p = {}, self = this;
    this.spec.controls.forEach(function (c, i) { p[c.name] = c.values[self.index[i]]; });
    return p;
  };
  Demo.prototype.frameIndex = function () {
    var idx = 0, controls = this.spec.controls;
    for (var i = 0; i < controls.length; i++) idx = idx * controls[i].values.length + this.index[i];
    return idx;
  };
  Demo.prototype.build = function () {
    var spec = this.spec, self = this, el = this.el;
    var pending = el.querySelectorAll(".nnd-pending, noscript");
    for (var p = 0; p < pending.length; p++) pending[p].parentNode.removeChild(pending[p]);
    el.setAttribute("role", "group");
    el.setAttribute("aria-label", spec.title);
    var head = document.createElement("div");
    head.className = "nnd-head";
    head.textContent = spec.title;
    el.appendChild(head);
    var controls = document.createElement("div");
    controls.className = "nnd-controls";
    this.readouts = [];
    this.inputs = [];
    spec.controls.forEach(function (c, i) {
      var id = "nnd" + self.uid + "_" + c.name;
      var row = document.createElement("div");
      row.className = "nnd-control";
      var label = document.createElement("label");
      label.setAttribute("for", id);
      label.textContent = c.label;
      row.appendChild(label);
      var input;
      if (c.kind === "choice") {
        input = document.createElement("select");
        c.values.forEach(function (v, k) {
          var o = document.createElement("option");
          o.value = String(k); o.textContent = formatValue(v, "");
          input.appendChild(o);
        });
        input.value = String(c.index);
      } else {
        input = document.createElement("input");
        input.type = "range"; input.min = "0"; input.max = String(c.values.length - 1); input.step = "1";
        input.value = String(c.index);
      }
      input.id = id;
      input.setAttribute("data-control", c.name);
      var readout = document.createElement("output");
      readout.setAttribute("for", id);
      row.appendChild(input);
      row.appendChild(readout);
      controls.appendChild(row);
      self.readouts.push(readout);
      self.inputs.push(input);
      var handler = function () { self.index[i] = parseInt(input.value, 10); self.update(); };
      input.addEventListener("input", handler);
      input.addEventListener("change", handler);
    });
    el.appendChild(controls);
    this.figure = document.createElement("div");
    this.figure.className = "nnd-figure";
    el.appendChild(this.figure);
  };
  Demo.prototype.update = function () {
    var t0 = performance.now();
    var spec = this.spec, self = this, params = this.params();
    spec.controls.forEach(function (c, i) {
      var txt = formatValue(params[c.name], c.fmt);
      self.readouts[i].textContent = txt;
      if (c.kind !== "choice") self.inputs[i].setAttribute("aria-valuetext", c.label + " = " + txt);
    });
    var result = this.compute ? this.compute(params, lib) : spec.frames[this.frameIndex()];
    this.result = result;
    var values = Object.assign({}, params, result); // templates may name controls too
    var n = spec.panels.length, ncols = spec.layout.ncols, nrows = Math.ceil(n / ncols);
    var pw = WIDTH / ncols, ph = spec.layout.height, parts = [];
    spec.panels.forEach(function (panel, i) {
      var box = { x: (i % ncols) * pw, y: Math.floor(i / ncols) * ph, w: pw, h: ph, i: i };
      parts.push(drawPanel(spec, panel, values, box, self.uid, spec.colors));
    });
    this.figure.innerHTML = '<svg xmlns="' + SVGNS + '" viewBox="0 0 ' + WIDTH + " " + nrows * ph + '" role="img" aria-label="' + esc(spec.alt) + '" class="nnd-svg">' + parts.join("") + "</svg>";
    this.lastRedrawMs = performance.now() - t0;
    this.el.setAttribute("data-state", JSON.stringify(params));
  };

  var CSS = [
    ".nnimaging-demo{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;margin:1em 0;max-width:760px;background:#fff;color:#111}",
    ".nnd-head{font-weight:600;margin-bottom:4px}",
    ".nnd-controls{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:2px 16px;font-size:0.9em}",
    ".nnd-control{display:flex;align-items:center;gap:8px}",
    ".nnd-control label{min-width:3.5em;font-family:var(--pst-font-family-monospace,monospace)}",
    ".nnd-control input[type=range]{flex:1}",
    ".nnd-control output{min-width:4.5em;text-align:right;font-family:var(--pst-font-family-monospace,monospace)}",
    ".nnd-svg{width:100%;height:auto;display:block;font-family:sans-serif}",
    ".nnd-title{font-size:15px;font-weight:600;fill:#111}",
    ".nnd-tick{font-size:13px;fill:#333}",
    ".nnd-label{font-size:14px;fill:#111}",
    ".nnd-grid{stroke:#000;stroke-opacity:0.08}",
    ".nnd-frame{fill:none;stroke:#555}",
    ".nnd-legend{fill:#fff;fill-opacity:0.85;stroke:#bbb}",
    ".nnd-cell{stroke:#555}",
    ".nnd-celltext{fill:#111}"
  ].join("\n");

  window.nnimagingDemo = {
    lib: lib,
    formatValue: formatValue,
    fillTemplate: fillTemplate,
    mountAll: function () {
      if (!document.getElementById("nnimaging-demo-css")) {
        var style = document.createElement("style");
        style.id = "nnimaging-demo-css";
        style.textContent = CSS;
        document.head.appendChild(style);
      }
      var nodes = document.querySelectorAll("div.nnimaging-demo:not([data-mounted])");
      for (var i = 0; i < nodes.length; i++) {
        var el = nodes[i];
        el.setAttribute("data-mounted", "1");
        try {
          var spec = JSON.parse(el.querySelector("script.nnimaging-demo-spec").textContent);
          el.nnimaging = new Demo(el, spec);
        } catch (err) {
          el.setAttribute("data-error", String(err));
          if (window.console) console.error("nnimaging demo failed:", err);
          throw err;
        }
      }
    }
  };
  // Draw the demos already on the page, and those parsed after this script (a site's <head>).
  window.nnimagingDemo.mountAll();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { window.nnimagingDemo.mountAll(); });
  }
})();
