// deepfit playground: the drawing (the decision map, the curves, the confusion matrix,
// the network diagram). Loaded before playground.js, which holds the connection, the
// controls and the page's state (frame, points, hidden, controls) these functions read.

"use strict";

const ORANGE = [245, 147, 34], BLUE = [8, 119, 189], WHITE = [255, 255, 255];
const PALETTE = [[8, 119, 189], [245, 147, 34], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                 [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];

// -- drawing ---------------------------------------------------------------------------
function mix(a, b, t) { return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t)); }
function diverging(code) {  // 0..255, 128 = 0: orange - white - blue
  const t = code / 127.5 - 1;
  return t >= 0 ? mix(WHITE, BLUE, t) : mix(WHITE, ORANGE, -t);
}
function bytes(b64) {
  const text = atob(b64), out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
const DIVERGING = new Uint8Array(256 * 3);  // code -> colour, computed once
for (let code = 0; code < 256; code++) DIVERGING.set(diverging(code), code * 3);

function paint(canvas, size, colour) {  // colour(i): [r, g, b] of pixel i
  return paintCodes(canvas, size, null, colour);
}
function paintCodes(canvas, size, codes, colour) {  // codes: bytes through DIVERGING
  if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
  const ctx = canvas.getContext("2d"), image = ctx.createImageData(size, size), d = image.data;
  for (let i = 0, j = 0; i < size * size; i++, j += 4) {
    if (codes) { const k = codes[i] * 3; d[j] = DIVERGING[k]; d[j + 1] = DIVERGING[k + 1];
                 d[j + 2] = DIVERGING[k + 2]; }
    else { const c = colour(i); d[j] = c[0]; d[j + 1] = c[1]; d[j + 2] = c[2]; }
    d[j + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function classColour(k) {
  return frame && frame.task === "binary" ? (k === 1 ? BLUE : ORANGE) : PALETTE[k % 10];
}

const mapCanvas = document.createElement("canvas");
function drawMap() {
  if (!frame) return;
  const n = frame.grid, map = bytes(frame.map);
  let small;
  if (frame.map_kind !== "class") small = paintCodes(mapCanvas, n, map);
  else {
    const conf = bytes(frame.confidence), k = frame.classes.length;
    small = paint(mapCanvas, n, (i) => mix(WHITE, PALETTE[map[i] % 10],
                  Math.max(0, (conf[i] / 255 - 1 / k) / (1 - 1 / k)) * 0.8));
  }
  const canvas = $("map"), ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const [x0, x1, y0, y1] = frame.bounds, W = canvas.width, H = canvas.height;
  const px = (x) => (x - x0) / (x1 - x0) * W, py = (y) => (y1 - y) / (y1 - y0) * H;
  if (frame.curve) {  // 1-D regression: the network's curve over x
    ctx.strokeStyle = "#222"; ctx.lineWidth = 2; ctx.beginPath();
    frame.curve.forEach((v, i) => { const x = i / (frame.curve.length - 1) * W;
      i ? ctx.lineTo(x, py(v)) : ctx.moveTo(x, py(v)); });
    ctx.stroke();
  }
  if (!points) return;
  const [lo, hi] = frame.value_range || [0, 1];
  for (let i = 0; i < points.x.length; i++) {
    const c = frame.task === "regression"
      ? diverging(Math.max(0, Math.min(255, (points.target[i] - lo) / (hi - lo || 1) * 255)))
      : classColour(points.target[i]);
    ctx.beginPath(); ctx.arc(px(points.x[i]), py(points.y2[i]), 3.5, 0, 2 * Math.PI);
    ctx.lineWidth = 1.5;
    if (points.train[i]) { ctx.fillStyle = `rgb(${c})`; ctx.fill(); ctx.strokeStyle = "#fff"; }
    else { ctx.fillStyle = "#fff"; ctx.fill(); ctx.strokeStyle = `rgb(${c})`; }
    ctx.stroke();
  }
}

function drawCurves() {
  const canvas = $("curves"), ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  if (history.length < 2) return;
  const last = history[history.length - 1].step || 1;
  let top = 1e-9;
  for (const h of history) for (const v of [h.train_loss, h.test_loss])
    if (v !== null && isFinite(v) && v > top) top = v;
  for (const [key, colour] of [["train_loss", "#333"], ["test_loss", "#0877bd"]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
    history.forEach((h, i) => { const x = h.step / last * (W - 4) + 2;
      const y = H - 2 - (h[key] ?? 0) / top * (H - 18);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  }
  ctx.fillStyle = "#666"; ctx.fillText(`max ${top.toPrecision(3)}`, 4, 10);  // above the curves
}

function fmt(v) { return v === null || v === undefined ? "undefined" : v.toFixed(3); }

function showFrame(m) {
  frame = m;
  if (history.length && m.step < history[history.length - 1].step) history = [];
  if (!history.length || m.step > history[history.length - 1].step) history.push(m.history);
  if (history.length > 2000)  // a long run: keep every second point (and the last)
    history = history.filter((_, i) => i % 2 === 0 || i === history.length - 1);
  $("epoch").textContent = m.epoch.toFixed(2);
  $("step-count").textContent = m.step;
  const s = m.metrics, reg = m.task === "regression";
  $("train-loss").textContent = fmt(s.train_loss);
  $("train-loss").dataset.value = s.train_loss;  // the full number, for tests and copying
  document.body.dataset.step = m.step;
  document.body.dataset.frames = Number(document.body.dataset.frames || 0) + 1;
  $("test-loss").textContent = fmt(s.test_loss);
  $("metric-name").textContent = reg ? "R²" : "accuracy";
  $("train-metric").textContent = fmt(reg ? s.train_r2 : s.train_accuracy);
  $("test-metric").textContent = fmt(reg ? s.test_r2 : s.test_accuracy);
  drawMap(); drawCurves(); drawConfusion(s.confusion); drawNeurons();
}

function drawConfusion(matrix) {
  const table = $("confusion");
  if (!matrix) { table.innerHTML = "<tr><td>(regression: none)</td></tr>"; return; }
  const names = frame.classes;
  table.innerHTML = "<tr><th></th>" + names.map((n) => `<th>${esc(n)}</th>`).join("") + "</tr>" +
    matrix.map((row, i) => `<tr><th>${esc(names[i])}</th>` +
      row.map((v) => `<td>${v}</td>`).join("") + "</tr>").join("");
}
function esc(s) { const d = document.createElement("div"); d.textContent = s; return d.innerHTML; }

// -- the network diagram ---------------------------------------------------------------
function drawNetworkColumns() {
  if (!controls) return;
  const FEATURES = controls.features, box = $("features");
  box.innerHTML = "";
  for (const [name, label] of Object.entries(FEATURES)) {
    const l = document.createElement("label"), input = document.createElement("input");
    input.type = "checkbox"; input.dataset.feature = name; input.checked = features.includes(name);
    input.onchange = () => { features = Object.keys(FEATURES).filter((f) =>
      f === name ? input.checked : features.includes(f)); sendSettings(); };
    l.append(input, " " + label); box.append(l);
  }
  const columns = $("columns");
  columns.innerHTML = "";
  const widths = [features.length, ...hidden];
  widths.forEach((width, layer) => {
    const col = document.createElement("div");
    col.className = width > 8 ? "column dense" : "column";
    const head = document.createElement("div"); head.className = "head";
    if (layer === 0) head.textContent = "inputs";
    else {
      const plus = button("+", () => {
        if (hidden[layer - 1] < controls.max_width) { hidden[layer - 1]++; sendSettings(); } });
      const minus = button("−", () => { if (hidden[layer - 1] > 1) { hidden[layer - 1]--; sendSettings(); } });
      plus.className = "add-neuron"; minus.className = "remove-neuron";
      head.append(plus, minus, document.createElement("br"), `${width} neurons`);
    }
    col.append(head);
    for (let j = 0; j < width; j++) {
      const c = document.createElement("canvas"); c.className = "neuron";
      c.dataset.layer = layer; c.dataset.index = j;
      c.title = layer === 0 ? FEATURES[features[j]] : `layer ${layer}, neuron ${j + 1}`;
      col.append(c);
    }
    columns.append(col);
  });
  const out = document.createElement("div"); out.className = "column";
  const head = document.createElement("div"); head.className = "head"; head.textContent = "output";
  const tile = document.createElement("canvas"); tile.className = "neuron output"; tile.id = "output-tile";
  out.append(head, tile); columns.append(out);
  $("layer-count").textContent = `${hidden.length} hidden layer(s)`;
  inputsDrawn = null; layout = null;
  drawNeurons();  // the last frame's tiles, until the next frame (none comes for a pace change)
}

function button(text, onclick) {
  const b = document.createElement("button"); b.textContent = text; b.onclick = onclick; return b;
}

function drawNeurons() {
  if (!frame) return;
  const n = frame.neuron_grid;
  document.querySelectorAll("canvas.neuron").forEach((c) => {
    const layer = Number(c.dataset.layer), j = Number(c.dataset.index);
    if (layer === 0) return;
    const maps = frame.neurons[layer - 1];
    if (!maps || !maps[j]) return;
    paintCodes(c, n, bytes(maps[j]));
  });
  if (points && inputsDrawn !== points && points.features.join() === features.join()) {
    drawInputs(); inputsDrawn = points;  // once per points message (the server's maps)
  }
  drawWires();
}

let inputsDrawn = null;
function drawInputs() {  // each input feature over the plane, as the network sees it
  document.querySelectorAll('canvas.neuron[data-layer="0"]').forEach((c) => {
    paintCodes(c, frame.neuron_grid, bytes(points.inputs[Number(c.dataset.index)]));
  });
}

let layout = null;  // the tiles' places, measured once per diagram (measuring forces layout)
window.addEventListener("resize", () => { layout = null; });
function measure() {
  const r = $("network").getBoundingClientRect();
  const cols = [...document.querySelectorAll("#columns .column")].map((col) =>
    [...col.querySelectorAll("canvas.neuron")].map((c) => {
      const b = c.getBoundingClientRect();
      return {left: b.left - r.left, right: b.right - r.left, y: (b.top + b.bottom) / 2 - r.top};
    }));
  const canvas = $("wires");
  canvas.width = r.width; canvas.height = r.height;
  const tile = $("output-tile");
  tile.width = 100; tile.height = 100;
  return {cols};
}

function drawWires() {  // thickness and colour by weight: blue positive, orange negative
  if (!layout) layout = measure();
  const canvas = $("wires"), ctx = canvas.getContext("2d"), cols = layout.cols;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  $("output-tile").getContext("2d").drawImage(mapCanvas, 0, 0, 100, 100);  // regions only: cheap
  frame.weights.forEach((w, l) => {
    if (l + 1 >= cols.length) return;
    const top = Math.max(...w.flat().map(Math.abs)) || 1;
    w.forEach((row, j) => row.forEach((v, i) => {
      const a = cols[l][i], b = cols[l + 1][l + 2 === cols.length ? 0 : j];
      if (!a || !b) return;
      ctx.strokeStyle = `rgba(${v > 0 ? BLUE : ORANGE},0.8)`;
      ctx.lineWidth = 0.3 + 3.5 * Math.abs(v) / top;
      ctx.beginPath(); ctx.moveTo(a.right, a.y); ctx.lineTo(b.left, b.y); ctx.stroke();
    }));
  });
}

function drawClassButtons() {
  if (chosenClass >= points.classes.length) chosenClass = 0;  // fewer classes than before
  const box = $("class-buttons");
  box.innerHTML = "";
  const reg = points.task === "regression";
  $("value-label").style.display = reg && points.y2.length && $("data").value !== "linear" ? "" : "none";
  $("loss").value = reg ? "squared" : $("loss").value;
  if (reg) return;
  points.classes.forEach((name, k) => {
    const b = button(`class ${name}`, () => { chosenClass = k; drawClassButtons(); });
    b.style.color = `rgb(${k < 2 && points.classes.length === 2 ? (k ? BLUE : ORANGE) : PALETTE[k]})`;
    if (k === chosenClass) b.classList.add("chosen");
    box.append(b);
  });
}
