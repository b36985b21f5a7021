/* The browser denoiser: the book's trained networks, run by ONNX Runtime Web in a Web Worker.
 *
 * One file, two roles. On a page, it fills in every panel written by the {nnimaging-denoiser}
 * directive (nnimaging.webdenoiser.panel_html): it reads the reader's image (or the test image),
 * turns it grey, scales it to at most 512 pixels a side, adds seeded Gaussian noise, and shows the
 * result with PSNRs computed as in nnimaging.evaluate (noise in float, not clipped; output clipped
 * and rounded to 8 bits; PSNR with peak 255). Started as a Web Worker (by the page, from this same
 * file), it loads ONNX Runtime Web and runs the networks, so the page stays responsive.
 * Everything is fetched from the site's own _static/denoiser/ folder (assets.json lists it).
 */
(function () {
  "use strict";

  if (typeof document === "undefined") {  // a Web Worker: the network runs here
    workerMain();
    return;
  }

  const SCRIPT = document.currentScript ? document.currentScript.src : "";
  const MAX_BYTES = 50 * 1024 * 1024;
  const MAX_PIXELS = 50e6;
  const MIN_SIDE = 16;

  class UserError extends Error {}

  // ---------------------------------------------------------------------------- the worker
  function workerMain() {
    let runtime = null;
    const sessions = new Map();

    function loadRuntime(base, info) {
      if (!runtime) {
        importScripts(base + info.script);  // defines self.ort
        self.ort.env.wasm.wasmPaths = base + info.path;
        self.ort.env.wasm.proxy = false;
        runtime = self.ort;
      }
      return runtime;
    }

    self.onmessage = async (event) => {
      const {id, base, ortInfo, model, data, height, width} = event.data;
      try {
        const ort = loadRuntime(base, ortInfo);
        const start = performance.now();
        if (!sessions.has(model)) {
          sessions.set(model, ort.InferenceSession.create(base + model, {
            executionProviders: ["wasm"], graphOptimizationLevel: "all"}));
        }
        let session;
        try {
          session = await sessions.get(model);
        } catch (err) {
          sessions.delete(model);
          throw err;
        }
        const loadMs = performance.now() - start;
        const input = new ort.Tensor("float32", data, [1, 1, height, width]);
        const t0 = performance.now();
        const result = await session.run({[session.inputNames[0]]: input});
        const ms = performance.now() - t0;
        const output = new Float32Array(result[session.outputNames[0]].data);
        self.postMessage({id, output, ms, loadMs}, [output.buffer]);
      } catch (err) {
        self.postMessage({id, error: String((err && err.message) || err)});
      }
    };
  }

  // ---------------------------------------------------------------------------- numbers
  function mulberry32(seed) {  // a small seeded generator: the same seed gives the same noise
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function addNoise(clean, sigma, seed) {
    const random = mulberry32(seed);
    const noisy = new Float32Array(clean.length);
    const s = sigma / 255;
    for (let i = 0; i < clean.length; i += 2) {  // Box-Muller: two normal draws per pair
      const u = 1 - random(), v = random();
      const r = Math.sqrt(-2 * Math.log(u));
      noisy[i] = clean[i] + s * r * Math.cos(2 * Math.PI * v);
      if (i + 1 < clean.length) noisy[i + 1] = clean[i + 1] + s * r * Math.sin(2 * Math.PI * v);
    }
    return noisy;
  }

  function to8bit(values) {  // nnimaging.evaluate.to_8bit
    const out = new Uint8ClampedArray(values.length);
    for (let i = 0; i < values.length; i++) {
      out[i] = Math.round(Math.min(1, Math.max(0, values[i])) * 255);
    }
    return out;
  }

  function psnr8(a, b) {  // PSNR with peak 255 of two 8-bit images
    let sum = 0;
    for (let i = 0; i < a.length; i++) {
      const d = a[i] - b[i];
      sum += d * d;
    }
    return sum === 0 ? Infinity : 10 * Math.log10(255 * 255 / (sum / a.length));
  }

  const fmt = (db) => (Number.isFinite(db) ? db.toFixed(2) : "∞");

  // ---------------------------------------------------------------------------- images
  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("undecodable"));
      img.src = url;
    });
  }

  /* An image file to grey values in [0, 1] (8-bit levels / 255), at most maxSide a side. */
  async function readImage(blob, name, maxSide) {
    if (!blob.size) throw new UserError(`“${name}” is empty (0 bytes): choose an image file.`);
    if (blob.size > MAX_BYTES) {
      throw new UserError(`“${name}” is ${(blob.size / 1048576).toFixed(0)} MB: the panel takes files ` +
                          `up to ${MAX_BYTES / 1048576} MB.`);
    }
    const url = URL.createObjectURL(blob);
    try {
      let img;
      try {
        img = await loadImage(url);
      } catch (err) {
        throw new UserError(`“${name}” is not an image this browser can read: choose a PNG, JPEG, ` +
                            "WebP, GIF or BMP file.");
      }
      const w0 = img.naturalWidth, h0 = img.naturalHeight;
      if (!w0 || !h0) throw new UserError(`“${name}” has no size in pixels: choose a PNG or JPEG file.`);
      if (w0 * h0 > MAX_PIXELS) {
        throw new UserError(`“${name}” is ${w0} × ${h0} pixels (${(w0 * h0 / 1e6).toFixed(0)} megapixels), ` +
                            `too large to read here: the limit is ${MAX_PIXELS / 1e6} megapixels.`);
      }
      const scale = Math.min(1, maxSide / Math.max(w0, h0));
      const w = Math.max(1, Math.round(w0 * scale)), h = Math.max(1, Math.round(h0 * scale));
      if (Math.min(w, h) < MIN_SIDE) {
        throw new UserError(`“${name}” is ${w0} × ${h0} pixels` + (scale < 1 ? `, ${w} × ${h} once scaled` : "") +
                            `: the networks need at least ${MIN_SIDE} pixels a side.`);
      }
      const canvas = document.createElement("canvas");
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext("2d", {willReadFrequently: true});
      ctx.fillStyle = "#fff";  // transparent pixels: on white
      ctx.fillRect(0, 0, w, h);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(img, 0, 0, w, h);
      const rgba = ctx.getImageData(0, 0, w, h).data;
      const grey = new Float32Array(w * h);
      let colour = false;
      for (let i = 0, j = 0; j < grey.length; i += 4, j++) {
        const r = rgba[i], g = rgba[i + 1], b = rgba[i + 2];
        if (r !== g || g !== b) colour = true;
        grey[j] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;  // Pillow's "L"
      }
      return {grey, width: w, height: h, originalWidth: w0, originalHeight: h0, scaled: scale < 1, colour};
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  /* Draw 8-bit grey values into an <img> (as a PNG blob URL). */
  function show(img, values8, width, height, alt) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(width, height);
    for (let j = 0, i = 0; j < values8.length; j++, i += 4) {
      image.data[i] = image.data[i + 1] = image.data[i + 2] = values8[j];
      image.data[i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    return new Promise((resolve) => canvas.toBlob((blob) => {
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(blob);
      img.width = width;
      img.height = height;
      img.alt = alt;
      img.hidden = false;
      resolve();
    }, "image/png"));
  }

  // ---------------------------------------------------------------------------- the worker pool
  let worker = null, nextId = 1;
  const pending = new Map();

  function runNetwork(message) {
    if (!worker) {
      worker = new Worker(SCRIPT);
      worker.onmessage = (event) => {
        const job = pending.get(event.data.id);
        if (!job) return;
        pending.delete(event.data.id);
        if (event.data.error) job.reject(new Error(event.data.error));
        else job.resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        for (const job of pending.values()) job.reject(new Error(event.message || "the worker failed"));
        pending.clear();
        worker = null;
      };
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, {resolve, reject});
      worker.postMessage({...message, id}, [message.data.buffer]);
    });
  }

  // ---------------------------------------------------------------------------- a panel
  async function mount(root) {
    if (root.dataset.mounted) return;
    root.dataset.mounted = "true";
    const base = new URL(".", SCRIPT).href;
    const form = root.querySelector("form");
    const file = root.querySelector("input[type=file]");
    const sigma = root.querySelector("input[name=sigma]");
    const sigmaValue = root.querySelector("output[name=sigma-value]");
    const seed = root.querySelector("input[name=seed]");
    const model = root.querySelector("select");
    const button = root.querySelector("button");
    const source = root.querySelector(".nnimaging-denoiser-source");
    const status = root.querySelector(".nnimaging-denoiser-status");
    const result = root.querySelector("[data-role=psnr]");
    const figure = (key) => root.querySelector(`[data-image=${key}]`);
    let assets = null, image = null, imageVersion = 0, busy = false;

    function say(text, error) {
      status.textContent = text;
      status.classList.toggle("nnimaging-denoiser-error", !!error);
      if (error) root.dataset.error = text;
      else delete root.dataset.error;
    }

    function clearResults() {
      delete result.dataset.psnr;
      delete result.dataset.networkMs;
      result.textContent = "–";
      for (const key of ["noisy", "denoised", "removed"]) {
        figure(key).querySelector("img").hidden = true;
        figure(key).querySelector(".nnimaging-denoiser-psnr").textContent = "";
      }
    }

    async function useImage(blob, name, describe) {
      const loaded = await readImage(blob, name, assets ? assets.max_side : 512);
      image = loaded;
      imageVersion++;
      clearResults();
      await show(figure("clean").querySelector("img"), to8bit(loaded.grey), loaded.width, loaded.height,
                 `The clean image: ${describe(loaded)}`);
      source.textContent = describe(loaded);
    }

    const describeTest = (im) => `Test image: Set12 01.png, ${im.width} × ${im.height} pixels.`;
    function describeFile(name) {
      return (im) => {
        const notes = [];
        if (im.colour) notes.push("colour converted to grey");
        if (im.scaled) {
          notes.push(`scaled down from ${im.originalWidth} × ${im.originalHeight} to ${im.width} × ${im.height} ` +
                     `(at most ${assets ? assets.max_side : 512} pixels a side)`);
        }
        return `Your image “${name}”: ${im.width} × ${im.height} pixels` +
               (notes.length ? `, ${notes.join("; ")}.` : ", used as it is.");
      };
    }

    sigma.addEventListener("input", () => { sigmaValue.textContent = sigma.value; });

    file.addEventListener("change", async () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      say(`Reading “${chosen.name}”…`);
      try {
        await useImage(chosen, chosen.name, describeFile(chosen.name));
        say("Image ready: press “Add noise and denoise”.");
      } catch (err) {
        const text = err instanceof UserError ? err.message : `“${chosen.name}” could not be read (${err.message}).`;
        say(`${text} ${image ? "The previous image is kept." : ""}`.trim(), true);
      }
    });

    async function run() {
      if (busy) return;
      if (!assets || !image) {
        say("The panel is not ready: its files could not be loaded.", true);
        return;
      }
      const chosen = assets.models.find((m) => m.name === model.value);
      if (Math.min(image.width, image.height) < chosen.min_size) {
        say(`This network needs at least ${chosen.min_size} pixels a side.`, true);
        return;
      }
      busy = true;
      button.disabled = true;
      root.setAttribute("aria-busy", "true");
      clearResults();
      const version = imageVersion, current = image;
      const s = Number(sigma.value), seedValue = Math.max(0, Math.floor(Number(seed.value) || 0));
      const noisy = addNoise(current.grey, s, seedValue);
      const first = !root.dataset.loaded || !root.dataset.loaded.split(" ").includes(chosen.name);
      say(first ? `Downloading the network (${(chosen.bytes / 1e6).toFixed(1)} MB)` +
                  (root.dataset.loaded ? "" : " and ONNX Runtime Web") + " and denoising…"
                : "Denoising…");
      try {
        const answer = await runNetwork({base, ortInfo: assets.ort, model: chosen.file,
                                         data: noisy.slice(), height: current.height, width: current.width});
        if (version !== imageVersion) {
          say("The image changed during the run: press the button again.");
          return;
        }
        root.dataset.loaded = `${root.dataset.loaded || ""} ${chosen.name}`.trim();
        const denoised = answer.output;
        const clean8 = to8bit(current.grey), noisy8 = to8bit(noisy), denoised8 = to8bit(denoised);
        const noisyDb = psnr8(noisy8, clean8), denoisedDb = psnr8(denoised8, clean8);
        const removed = new Float32Array(denoised.length);
        let sumSq = 0;
        for (let i = 0; i < removed.length; i++) {
          removed[i] = noisy[i] - denoised[i];
          sumSq += removed[i] * removed[i];
        }
        const removedStd = 255 * Math.sqrt(sumSq / removed.length);
        const gain = 127 / (3 * Math.max(s, 5));  // +-3 sigma fills the grey range
        const removed8 = new Uint8ClampedArray(removed.length);
        for (let i = 0; i < removed.length; i++) removed8[i] = Math.round(128 + 255 * removed[i] * gain);
        const w = current.width, h = current.height;
        await Promise.all([
          show(figure("noisy").querySelector("img"), noisy8, w, h,
               `The image with Gaussian noise of σ = ${s} (seed ${seedValue}): PSNR ${fmt(noisyDb)} dB.`),
          show(figure("denoised").querySelector("img"), denoised8, w, h,
               `The image denoised by ${chosen.name}: PSNR ${fmt(denoisedDb)} dB.`),
          show(figure("removed").querySelector("img"), removed8, w, h,
               `The noise ${chosen.name} removed, mid-grey for zero: standard deviation ${removedStd.toFixed(1)} ` +
               `on the 0–255 scale (the added noise has σ = ${s}).`),
        ]);
        figure("noisy").querySelector(".nnimaging-denoiser-psnr").textContent = `(${fmt(noisyDb)} dB)`;
        figure("denoised").querySelector(".nnimaging-denoiser-psnr").textContent = `(${fmt(denoisedDb)} dB)`;
        figure("removed").querySelector(".nnimaging-denoiser-psnr").textContent =
          `(std ${removedStd.toFixed(1)}; σ = ${s})`;
        result.textContent = fmt(denoisedDb);
        result.dataset.networkMs = answer.ms.toFixed(0);
        result.dataset.psnr = String(denoisedDb);
        say(`${chosen.name} denoised ${w} × ${h} pixels in ${(answer.ms / 1000).toFixed(2)} s ` +
            "(WebAssembly, in a Web Worker)" +
            (first ? `; loading the network took ${(answer.loadMs / 1000).toFixed(2)} s more.` : ".") +
            ` PSNR: noisy ${fmt(noisyDb)} dB, denoised ${fmt(denoisedDb)} dB.`);
      } catch (err) {
        say(`The network could not run: ${err.message}`, true);
      } finally {
        busy = false;
        button.disabled = false;
        root.removeAttribute("aria-busy");
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });

    try {
      const response = await fetch(base + "assets.json");
      if (!response.ok) throw new Error(`assets.json: HTTP ${response.status}`);
      assets = await response.json();
      const blob = await (await fetch(base + assets.image.file)).blob();
      await useImage(blob, assets.image.name, describeTest);
      root.dataset.ready = "true";
    } catch (err) {
      say(`The denoiser's files are missing from this site (${err.message}).`, true);
    }
  }

  function mountAll() {
    document.querySelectorAll("[data-nnimaging-denoiser]").forEach(mount);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
