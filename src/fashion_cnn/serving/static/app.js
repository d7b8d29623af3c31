// The page of `fashion-cnn serve`: send a picture (uploaded or drawn) to POST /predict, show the answer.
"use strict";

const $ = (id) => document.getElementById(id);
let classes = [];
let explain = "";  // "&include=gradcam&include=feature_maps" once /model says the engine can explain (PyTorch)

// ---- model info and empty bars -------------------------------------------------------------
fetch("/model").then((r) => r.json()).then((info) => {
  classes = info.classes.map((name, i) => ({ name, ko: info.classes_ko[i] }));
  const arch = info.arch && info.arch.name ? info.arch.name : "model";
  const acc = info.metrics && info.metrics.test ? ` · test accuracy ${(100 * info.metrics.test.accuracy).toFixed(1)}%` : "";
  $("model-info").textContent = `${arch} · ${info.parameters.toLocaleString()} parameters · ${classes.length} classes${acc}`;
  if (info.engine === "torch") explain = "&include=gradcam&include=feature_maps";
  else $("why-off").hidden = false;
  drawBars(classes.map(() => 0), -1);
}).catch(() => { $("model-info").textContent = "Could not reach the model."; });

function drawBars(probs, top) {
  const list = $("bars");
  if (list.children.length !== classes.length) {
    list.replaceChildren(...classes.map((c) => {
      const li = document.createElement("li");
      li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
      li.querySelector(".name").append(c.name, Object.assign(document.createElement("small"), { textContent: c.ko !== c.name ? c.ko : "" }));
      return li;
    }));
  }
  [...list.children].forEach((li, i) => {
    li.classList.toggle("top", i === top);
    li.querySelector(".fill").style.width = `${(100 * probs[i]).toFixed(1)}%`;
    li.querySelector(".pct").textContent = top < 0 ? "" : `${(100 * probs[i]).toFixed(1)}%`;
  });
}

// ---- talking to the API: one request in flight, the latest picture wins --------------------
let inFlight = false;
let pending = null;
// Clear starts a new generation: the answer to a picture sent before it (still on its way, queued, or being
// encoded by toBlob) is dropped, so a cleared canvas never shows an old prediction.
let generation = 0;

function predict(blob, gen = generation) {
  if (gen !== generation) return;
  if (inFlight) { pending = blob; return; }
  inFlight = true;
  $("prediction-label").dataset.state = "busy";
  fetch(`/predict?include_input=true${explain}`, { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } })
    .then(async (r) => {
      const body = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
      if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
      if (gen === generation) show(body);
    })
    .catch((e) => { if (gen === generation) showError(e.message); })
    .finally(() => {
      inFlight = false;
      if (pending) { const next = pending; pending = null; predict(next); }
    });
}

function show(res) {
  $("error").hidden = true;
  $("prediction-label").textContent = res.label;
  $("prediction-label").dataset.state = "done";
  $("prediction-label-ko").textContent = res.label_ko !== res.label ? res.label_ko : "";
  $("prediction-confidence").textContent = `${(100 * res.probability).toFixed(1)}% sure`;
  // A model with a not-clothing detector says when the picture is unlike its training images; the class and
  // the bars stay, as what the model would answer anyway.
  const unlike = res.in_distribution === false;
  $("prediction-label").dataset.ood = unlike ? "out" : "";
  $("prediction-ood").textContent = unlike ? res.verdict.charAt(0).toUpperCase() + res.verdict.slice(1) : "";
  $("prediction-ood").hidden = !unlike;
  $("timing").textContent = `${res.time_ms.toFixed(1)} ms on the server`;
  $("model-input").src = `data:image/png;base64,${res.input_png}`;
  $("model-input").hidden = false;
  $("seen-empty").hidden = true;
  drawBars(res.probabilities.map((p) => p.probability), res.index);
  showInside(res);
}

// The captions the page starts with, shown again when there is no answer (after Clear).
const emptyCaptions = { cam: $("cam-caption").textContent, maps: $("maps-caption").textContent };

function showInside(res) {
  const cam = res.gradcam, maps = res.feature_maps;
  $("gradcam").hidden = !cam;
  $("cam-empty").hidden = !!cam;
  $("cam-caption").textContent = cam
    ? `Why ${res.label}: where the evidence lies (Grad-CAM at ${cam.layer}; red most, blue none)`
    : emptyCaptions.cam;
  if (cam) $("gradcam").src = `data:image/png;base64,${cam.overlay_png}`;
  $("feature-maps").hidden = !maps;
  $("maps-empty").hidden = !!maps;
  $("maps-caption").textContent = maps
    ? `What ${maps.layer} makes of the picture: its ${maps.count} feature maps, bright where each filter responds`
    : emptyCaptions.maps;
  if (maps) $("feature-maps").src = `data:image/png;base64,${maps.grid_png}`;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("prediction-label").dataset.state = "error";
}

// ---- tabs -----------------------------------------------------------------------------------
for (const [tab, panel] of [["tab-upload", "panel-upload"], ["tab-draw", "panel-draw"]]) {
  $(tab).addEventListener("click", () => {
    for (const [t, p] of [["tab-upload", "panel-upload"], ["tab-draw", "panel-draw"]]) {
      $(t).setAttribute("aria-selected", String(t === tab));
      $(p).hidden = p !== panel;
    }
  });
}

// ---- upload ---------------------------------------------------------------------------------
function useFile(file) {
  if (!file) return;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-text").replaceChildren(Object.assign(document.createElement("small"), { textContent: `${file.name} · choose another or drop it here` }));
  predict(file);
}
$("file-input").addEventListener("change", (e) => useFile(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); useFile(e.dataTransfer.files[0]); });

// ---- drawing --------------------------------------------------------------------------------
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
function clearCanvas() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}
clearCanvas();

let drawing = false;
let last = null;
let sentAt = 0;

function point(e) {
  const r = canvas.getBoundingClientRect();
  return { x: (e.clientX - r.left) * (canvas.width / r.width), y: (e.clientY - r.top) * (canvas.height / r.height) };
}
function sendCanvas() {
  sentAt = performance.now();
  const gen = generation;
  canvas.toBlob((blob) => blob && predict(blob, gen), "image/png");
}
canvas.addEventListener("pointerdown", (e) => {
  drawing = true;
  canvas.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
});
canvas.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
  if (performance.now() - sentAt > 120) sendCanvas(); // live, but at most ~8 requests a second
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => { if (drawing) { drawing = false; sendCanvas(); } });
}
function stroke(a, b) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = Number($("brush").value);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
}
$("clear").addEventListener("click", () => {
  generation += 1;
  pending = null;
  clearCanvas();
  $("prediction-label").textContent = "—";
  $("prediction-label").dataset.state = "idle";
  $("prediction-label-ko").textContent = "";
  $("prediction-confidence").textContent = "";
  $("prediction-label").dataset.ood = "";
  $("prediction-ood").textContent = "";
  $("prediction-ood").hidden = true;
  $("timing").textContent = "";
  $("model-input").hidden = true;
  $("seen-empty").hidden = false;
  drawBars(classes.map(() => 0), -1);
  showInside({});
});
