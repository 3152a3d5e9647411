// The page: open an image or a video, click and drag prompts per object, see masks at once, track, download.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = [[255, 64, 64], [64, 220, 90], [70, 140, 255], [255, 200, 40], [220, 80, 255], [40, 220, 220],
                [255, 130, 40], [160, 255, 120]];
const ALPHA = 0.5;
const color = (objId) => COLORS[(objId - 1) % COLORS.length];

const state = {
  kind: null, sid: null, width: 0, height: 0, numFrames: 1, frame: 0, background: null,
  objects: [1], current: 1,
  prompts: {},  // `${frame}:${obj}` -> {points: [[x, y]], labels: [1|0], box: [x0, y0, x1, y1] | null, history}
  masks: {},    // frame -> {objId: Uint8Array}
  rles: {},     // frame -> {objId: COCO RLE} (image sessions: what the JSON download holds)
  propagation: null,
};

function status(text) { $("status").textContent = text; }
async function guarded(what, fn) {
  try { return await fn(); } catch (e) { status(`${what}: ${e.message}`); throw e; }
}

// ---- drawing --------------------------------------------------------------------------------------------------
function draw() {
  const canvas = $("canvas"), ctx = canvas.getContext("2d");
  if (!state.background) return;
  ctx.drawImage(state.background, 0, 0);
  const masks = state.masks[state.frame] || {};
  const ids = Object.keys(masks);
  if (ids.length) {
    const image = ctx.getImageData(0, 0, state.width, state.height), px = image.data;
    for (const id of ids) {
      const m = masks[id], [r, g, b] = color(Number(id));
      for (let i = 0; i < m.length; i++) {
        if (!m[i]) continue;
        const o = 4 * i;
        px[o] = px[o] * (1 - ALPHA) + r * ALPHA;
        px[o + 1] = px[o + 1] * (1 - ALPHA) + g * ALPHA;
        px[o + 2] = px[o + 2] * (1 - ALPHA) + b * ALPHA;
      }
    }
    ctx.putImageData(image, 0, 0);
  }
  for (const [key, p] of Object.entries(state.prompts)) {  // this frame's clicks and boxes
    const [frame, obj] = key.split(":").map(Number);
    if (frame !== state.frame) continue;
    ctx.lineWidth = 2;
    ctx.strokeStyle = `rgb(${color(obj)})`;
    if (p.box) ctx.strokeRect(p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]);
    p.points.forEach(([x, y], k) => {
      ctx.fillStyle = p.labels[k] ? "#2ee86b" : "#ff4040";
      ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    });
  }
}

function setMasks(frame, objects) {
  state.masks[frame] = {};
  state.rles[frame] = {};
  for (const o of objects) {
    state.masks[frame][o.obj_id] = api.decodeRle(o.segmentation);
    state.rles[frame][o.obj_id] = o;
  }
}

function renderObjects() {
  const list = $("objects");
  list.innerHTML = "";
  for (const id of state.objects) {
    const li = document.createElement("li");
    li.className = id === state.current ? "current" : "";
    li.dataset.obj = id;
    li.innerHTML = `<span class="swatch" style="background: rgb(${color(id)})"></span>object ${id}`;
    const remove = document.createElement("button");
    remove.className = "remove"; remove.textContent = "×"; remove.title = "remove this object";
    remove.onclick = (e) => { e.stopPropagation(); removeObject(id); };
    if (state.kind === "video") li.appendChild(remove);
    li.onclick = () => { state.current = id; renderObjects(); };
    list.appendChild(li);
  }
}

// ---- opening ----------------------------------------------------------------------------------------------------
async function opened(info, kind, backgroundPath) {
  Object.assign(state, { kind, sid: info.session_id, width: info.width, height: info.height,
                         numFrames: info.num_frames || 1, frame: 0, objects: [1], current: 1,
                         prompts: {}, masks: {}, rles: {} });
  $("canvas").width = info.width;
  $("canvas").height = info.height;
  $("video-controls").hidden = $("propagation").hidden = $("download-zip").hidden = kind !== "video";
  $("frame-slider").max = state.numFrames - 1;
  $("download-json").disabled = false;
  $("progress").value = 0;
  $("progress-label").textContent = "";
  renderObjects();
  state.background = await api.bitmap(backgroundPath);
  await showFrame(0);
  status(`${info.name}: ${info.width}x${info.height}${kind === "video" ? `, ${state.numFrames} frames` : ""}`);
}

async function openFile(file) {
  const kind = file.type.startsWith("video/") ? "video" : "image";
  status(`uploading ${file.name} ...`);
  const info = await guarded("upload", async () =>
    (await api.request("POST", `/api/${kind}s?name=${encodeURIComponent(file.name)}`, file, true)).json());
  const background = kind === "video" ? `/api/videos/${info.session_id}/frames/0`
                                      : `/api/images/${info.session_id}/image`;
  await opened(info, kind, background);
}

async function openMedia(entry) {
  $("media-panel").hidden = true;
  status(`opening ${entry.path} ...`);
  const info = await guarded("open", () => api.json("POST", `/api/${entry.kind}s/open`, { path: entry.path }));
  await opened(info, entry.kind, entry.kind === "video" ? `/api/videos/${info.session_id}/frames/0`
                                                        : `/api/images/${info.session_id}/image`);
}

async function browse(path) {
  const listing = await guarded("media", () => api.json("GET", `/api/media?path=${encodeURIComponent(path)}`));
  $("media-path").textContent = `/${path}`;
  const list = $("media-list");
  list.innerHTML = "";
  const entries = path ? [{ name: "..", kind: "dir", path: path.split("/").slice(0, -1).join("/") }] : [];
  for (const entry of entries.concat(listing.entries)) {
    const li = document.createElement("li");
    li.textContent = `${entry.kind === "dir" ? "📁" : entry.kind === "video" ? "🎞" : "🖼"} ${entry.name}`;
    li.onclick = () => (entry.kind === "dir" ? browse(entry.path) : openMedia(entry));
    list.appendChild(li);
  }
  $("media-panel").hidden = false;
}

// ---- frames -----------------------------------------------------------------------------------------------------
async function showFrame(frame) {
  frame = Math.max(0, Math.min(state.numFrames - 1, frame));
  state.frame = frame;
  $("frame-slider").value = frame;
  $("frame-label").textContent = `frame ${frame} / ${state.numFrames - 1}`;
  if (state.kind === "video") {
    const [image, masks] = await Promise.all([
      api.bitmap(`/api/videos/${state.sid}/frames/${frame}`),
      state.masks[frame] ? null : api.json("GET", `/api/videos/${state.sid}/masks/${frame}`)]);
    if (state.frame !== frame) return;  // the user moved on meanwhile
    state.background = image;
    if (masks) setMasks(frame, masks.objects);
  }
  draw();
}

// ---- prompts ----------------------------------------------------------------------------------------------------
const key = () => `${state.frame}:${state.current}`;

async function sendPrompt() {
  const k = key(), p = state.prompts[k];
  if (!p || (!p.points.length && !p.box)) return clearPrompt();
  if (state.kind === "image") {
    const result = await guarded("predict", () => api.json("POST", `/api/images/${state.sid}/predict`, {
      obj_id: state.current, points: p.points, labels: p.labels, box: p.box,
      multimask: p.points.length === 1 && !p.box }));
    const best = result.masks[result.best];
    state.masks[0] = state.masks[0] || {};
    state.rles[0] = state.rles[0] || {};
    state.masks[0][state.current] = api.decodeRle(best.segmentation);
    state.rles[0][state.current] = { obj_id: state.current, ...best };
    status(`object ${state.current}: mask of ${best.area} px, score ${best.score.toFixed(3)}`);
  } else {
    const result = await guarded("prompt", () => api.json("POST", `/api/videos/${state.sid}/prompts`, {
      frame: state.frame, obj_id: state.current, points: p.points, labels: p.labels, box: p.box,
      clear_old_points: true }));
    setMasks(result.frame, result.objects);
    status(`frame ${result.frame}: ${result.objects.length} object(s)`);
  }
  draw();
}

async function clearPrompt() {
  delete state.prompts[key()];
  if (state.kind === "image") {
    if (state.masks[0]) delete state.masks[0][state.current];
    if (state.rles[0]) delete state.rles[0][state.current];
  } else if (state.objects.length) {
    const result = await guarded("clear", () => api.json("POST", `/api/videos/${state.sid}/clear`,
                                                         { frame: state.frame, obj_id: state.current }))
      .catch(() => null);
    if (result) setMasks(result.frame, result.objects);
  }
  draw();
}

function addClick(x, y, label) {
  const p = state.prompts[key()] || (state.prompts[key()] = { points: [], labels: [], box: null, history: [] });
  p.points.push([x, y]);
  p.labels.push(label);
  p.history.push("point");
  return sendPrompt();
}

function setBox(box) {
  const p = state.prompts[key()] || (state.prompts[key()] = { points: [], labels: [], box: null, history: [] });
  p.box = box;
  p.history.push("box");
  return sendPrompt();
}

function undo() {
  const p = state.prompts[key()];
  if (!p || !p.history.length) return;
  if (p.history.pop() === "box") p.box = null; else { p.points.pop(); p.labels.pop(); }
  return sendPrompt();
}

async function removeObject(id) {
  const result = await guarded("remove", () => api.json("DELETE", `/api/videos/${state.sid}/objects/${id}`))
    .catch(() => null);
  state.objects = state.objects.filter((o) => o !== id);
  if (!state.objects.length) state.objects = [1];
  state.current = state.objects[0];
  for (const k of Object.keys(state.prompts)) if (k.endsWith(`:${id}`)) delete state.prompts[k];
  for (const f of Object.keys(state.masks)) delete state.masks[f][id];
  if (result) for (const f of result.frames) setMasks(f.frame, f.objects);
  renderObjects();
  draw();
}

function newObject() {
  const id = Math.max(0, ...state.objects) + 1;
  if (id > 255) return status("at most 255 objects");
  state.objects.push(id);
  state.current = id;
  renderObjects();
}

// Canvas coordinates of a mouse event, in image pixels whatever the displayed size.
function pixel(e) {
  const r = $("canvas").getBoundingClientRect();
  return [(e.clientX - r.left) * (state.width / r.width), (e.clientY - r.top) * (state.height / r.height)];
}

let dragStart = null;
$("canvas").addEventListener("contextmenu", (e) => e.preventDefault());
$("canvas").addEventListener("mousedown", (e) => { if (state.sid) dragStart = pixel(e); });
$("canvas").addEventListener("mouseup", (e) => {
  if (!dragStart || state.propagation) return;
  const [x0, y0] = dragStart, [x1, y1] = pixel(e);
  dragStart = null;
  if (Math.abs(x1 - x0) > 6 && Math.abs(y1 - y0) > 6) {
    return setBox([Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)]);
  }
  return addClick(x1, y1, e.button === 2 || e.shiftKey ? 0 : 1);
});

// ---- tracking ----------------------------------------------------------------------------------------------------
function propagate() {
  if (state.kind !== "video" || state.propagation) return;
  $("propagate").disabled = true;
  $("cancel").disabled = false;
  $("progress").value = 0;
  state.propagation = api.propagate(state.sid, { direction: $("direction").value }, (event) => {
    if (event.type === "started") $("progress").max = Math.max(event.total, 1);
    if (event.type === "frame") {
      setMasks(event.frame, event.objects);
      $("progress").value = event.done;
      $("progress-label").textContent = `${Math.round((100 * event.done) / event.total)}% (frame ${event.frame})`;
      if (event.frame === state.frame) draw();
    }
    if (event.type === "done") {
      $("progress").value = $("progress").max;
      $("progress-label").textContent = `100%: ${event.frames} frames in ${event.seconds.toFixed(1)} s`;
    }
    if (event.type === "cancelled") $("progress-label").textContent = `cancelled (${event.reason})`;
    if (event.type === "error") status(`tracking: ${event.detail}`);
    if (event.type === "closed") {
      state.propagation = null;
      $("propagate").disabled = false;
      $("cancel").disabled = true;
    }
  });
}

// ---- results -----------------------------------------------------------------------------------------------------
function downloadJson() {
  if (state.kind === "video") return api.download(`/api/videos/${state.sid}/masks.json`, "masks.json");
  const doc = { width: state.width, height: state.height, objects: Object.values(state.rles[0] || {}) };
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(doc)], { type: "application/json" }));
  a.download = "masks.json";
  a.click();
}

// ---- wiring ------------------------------------------------------------------------------------------------------
$("file-input").addEventListener("change", (e) => e.target.files[0] && openFile(e.target.files[0]));
$("media-button").onclick = () => browse("");
$("media-close").onclick = () => { $("media-panel").hidden = true; };
$("new-object").onclick = newObject;
$("undo").onclick = undo;
$("prev-frame").onclick = () => showFrame(state.frame - 1);
$("next-frame").onclick = () => showFrame(state.frame + 1);
$("frame-slider").oninput = (e) => showFrame(Number(e.target.value));
$("propagate").onclick = propagate;
$("cancel").onclick = () => state.propagation && state.propagation.cancel();
$("download-zip").onclick = () => guarded("export", () => api.download(`/api/videos/${state.sid}/export.zip`,
                                                                        "masks.zip"));
$("download-json").onclick = downloadJson;
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
  if (e.key === "ArrowRight" || e.key === ".") showFrame(state.frame + 1);
  else if (e.key === "ArrowLeft" || e.key === ",") showFrame(state.frame - 1);
  else if (e.key === "n") newObject();
  else if (e.key === "z" || (e.key === "Z" && e.ctrlKey)) undo();
  else if (e.key === "p") propagate();
  else return;
  e.preventDefault();
});

api.json("GET", "/api/model").then((m) => {
  $("model-info").textContent = `${m.model} · ${m.image_size}px · ${m.backend}`;
  $("media-button").hidden = !m.media_root;
  status("open an image or a video");
}).catch((e) => status(e.message));
