// deepfit playground: the page. Settings live in the URL (#data=xor&hidden=4,2&...); the
// server trains and sends frames over one WebSocket; this file sends controls and takes frames,
// playground_draw.js draws them.
// What the controls allow (features, ranges, limits, each generator's noise, the defaults)
// comes from the server's first message: deepfit.playground.settings.controls().
"use strict";

const $ = (id) => document.getElementById(id);
// URL key -> [element id, settings key, text or number]
const FIELDS = {data: ["data", "data", "s"], noise: ["noise", "noise"],
                points: ["points", "points"], test: ["test-ratio", "test_ratio"],
                seed: ["seed", "seed"], act: ["activation", "activation", "s"], lr: ["lr", "lr"],
                batch: ["batch", "batch_size"], opt: ["optimizer", "optimizer", "s"],
                reg: ["regularization", "regularization", "s"], rate: ["reg-rate", "reg_rate"],
                loss: ["loss", "loss", "s"], stop: ["stop-epoch", "stop_epoch"],
                speed: ["speed", "speed"]};

let controls = null;  // the server's: {features, noise, ranges, max_layers, max_width, defaults}
let ws = null, sessionKey = null, playing = false, hidden = [];
let features = [], points = null, frame = null, history = [], chosenClass = 0;
// the points in the link (pts=): read from the address once, then as the server encodes them
let urlPoints = null, linkPoints = null;

function applyControls(c) {  // the defaults and ranges, before the URL's values
  controls = c;
  for (const [id, name] of Object.values(FIELDS)) {
    const range = c.ranges[name];
    if (range) { $(id).min = range[0]; $(id).max = range[1]; }
    $(id).value = c.defaults[name];
  }
  hidden = c.defaults.hidden.slice(); features = c.defaults.features.slice();
}

function readUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, [id]] of Object.entries(FIELDS)) {
    if (params.has(key)) $(id).value = params.get(key);
  }
  const noise = controls.noise[$("data").value];  // a generator named, no noise: its usual
  if (!params.has("noise") && noise !== undefined) $("noise").value = noise;
  if (params.has("hidden")) hidden = params.get("hidden").split(",").filter(Boolean).map(Number);
  if (params.has("features")) features = params.get("features").split(",").filter(Boolean);
  urlPoints = linkPoints = params.get("pts");
}

function writeUrl() {
  const params = new URLSearchParams();
  for (const [key, [id]] of Object.entries(FIELDS)) params.set(key, $(id).value);
  params.set("features", features.join(","));
  params.set("hidden", hidden.join(","));
  if (linkPoints) params.set("pts", linkPoints);
  history_replace("#" + params.toString());
}
function history_replace(hash) { window.history.replaceState(null, "", hash); }

function settings() {
  const out = {features, hidden};
  for (const [id, name, kind] of Object.values(FIELDS)) {
    const raw = $(id).value;
    out[name] = kind === "s" ? raw : Number(raw);
  }
  return out;
}

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function sendSettings() {
  writeUrl();
  drawNetworkColumns();
  $("message").textContent = "";
  const message = {type: "settings", settings: settings()};
  if (urlPoints) { message.points = urlPoints; urlPoints = null; }  // the link's, once
  send(message);
}

function setPlaying(on) {
  playing = on;
  $("play").classList.toggle("playing", on);
  $("play").innerHTML = on ? "&#10073;&#10073; pause" : "&#9654; play";
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onmessage = (event) => receive(JSON.parse(event.data));
  ws.onclose = () => { setPlaying(false); if (!$("message").textContent)
    $("message").textContent = "disconnected from the playground server; reload the page"; };
}

function receive(m) {
  if (m.type === "hello") {
    sessionKey = m.session; applyControls(m.controls); readUrl(); sendSettings();
  }
  else if (m.type === "points") {
    points = m; drawClassButtons();
    linkPoints = m.link; writeUrl();
    $("link-note").hidden = !m.link_note;
    $("link-note-text").textContent = m.link_note || "";
    document.body.dataset.points = m.x.length;
    if (!playing) drawMap();
  }
  else if (m.type === "frame") { showFrame(m); }
  else if (m.type === "paused") { setPlaying(false); }
  else if (m.type === "error") {
    setPlaying(false); $("message").textContent = m.message;
    if (!$("export-result").dataset.path) $("export-result").textContent = "";  // not saved
  }
  else if (m.type === "python") {
    $("python-deepfit").textContent = m.deepfit; $("python-torch").textContent = m.torch;
    $("python-dialog").showModal();
  } else if (m.type === "points_csv") {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([m.csv], {type: "text/csv"}));
    a.download = "playground-points.csv"; a.click(); URL.revokeObjectURL(a.href);
  } else if (m.type === "exported") {
    $("export-result").textContent = `saved the deepfit run ${m.path} (${m.note})`;
    $("export-result").dataset.path = m.path;
  }
}

// -- controls --------------------------------------------------------------------------
function wire() {
  for (const [id] of Object.values(FIELDS)) $(id).onchange = () => {
    const noise = controls.noise[$("data").value];
    if (id === "data" && noise !== undefined) $("noise").value = noise;
    if (id === "data" && $("data").value === "linear") { features = ["x1"]; $("loss").value = "squared"; }
    else if (id === "data" && $("data").value !== "upload") $("loss").value = "cross_entropy";
    sendSettings();
  };
  $("play").onclick = () => { act(); setPlaying(!playing); send({type: playing ? "play" : "pause"}); };
  $("step").onclick = () => { act(); setPlaying(false); send({type: "step"}); };
  $("reset").onclick = () => { act(); setPlaying(false); history = []; send({type: "reset"}); };
  $("add-layer").onclick = () => {
    if (hidden.length < controls.max_layers) { hidden.push(2); sendSettings(); } };
  $("remove-layer").onclick = () => { if (hidden.length) { hidden.pop(); sendSettings(); } };
  $("python-button").onclick = () => send({type: "python"});
  $("download-points").onclick = () => send({type: "points_csv"});
  $("export").onclick = () => {
    if (!act()) return;
    $("export-result").textContent = "saving the deepfit run…";
    delete $("export-result").dataset.path;
    send({type: "export", name: $("export-name").value.trim() || null}); };
  $("upload").onchange = upload;
  $("map").onclick = (event) => {
    if (!frame) return;
    const r = $("map").getBoundingClientRect(), [x0, x1, y0, y1] = frame.bounds;
    const x = x0 + (event.clientX - r.left) / r.width * (x1 - x0);
    const y = y1 - (event.clientY - r.top) / r.height * (y1 - y0);
    if (event.shiftKey) send({type: "remove", x, y, radius: 0.04 * Math.max(x1 - x0, y1 - y0)});
    else if (frame.task === "regression") send({type: "add", x, y,
      label: $("data").value === "linear" ? y : Number($("point-value").value)});
    else send({type: "add", x, y, label: chosenClass});
  };
  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    if (/^[0-9]$/.test(event.key) && points && Number(event.key) < points.classes.length) {
      chosenClass = Number(event.key); drawClassButtons();
    } else if (event.key === " ") { event.preventDefault(); $("play").click(); }
  });
}

function act() {  // a new action: the last error line no longer applies (unless disconnected)
  const open = ws && ws.readyState === WebSocket.OPEN;
  if (open) $("message").textContent = "";
  return open;
}

async function upload() {
  const file = $("upload").files[0];
  if (!file || !sessionKey) return;
  const reply = await fetch(`/upload/${sessionKey}?name=${encodeURIComponent(file.name)}`,
                            {method: "POST", body: await file.arrayBuffer(),
                             headers: {"Content-Type": "text/csv"}});
  const body = await reply.json();
  if (!reply.ok) { $("message").textContent = body.detail; return; }
  $("upload-info").textContent = `${file.name}: ${body.rows} points, ` +
    (body.task === "regression" ? "a numeric target" : `${body.classes.length} classes`);
  $("data").value = "upload";
  $("loss").value = body.task === "regression" ? "squared" : "cross_entropy";
  sendSettings();
}

wire();
connect();  // the server's hello brings the controls; then the URL's settings are read
