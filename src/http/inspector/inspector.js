// The inspector page: one flow, live. Plain browser JS (no build step), built on the
// client library, which the server bundles for the browser at ./flowsync-client.js.
//
// URL: /?flow=<flowId>   (optional #token=<jwt>: sent as Authorization, which selects the fetch reader)
import { createFlowStore, subscribeFlow } from "./flowsync-client.js";

const NODE_W = 150;
const NODE_H = 46;
const MAX_LOG_ROWS = 1000;
const SVG = "http://www.w3.org/2000/svg";

const basePath = document.querySelector('meta[name="flowsync-base-path"]').content;
const $ = (id) => document.getElementById(id);
const els = {
  form: $("flow-form"),
  flow: $("flow"),
  state: $("state"),
  drop: $("drop"),
  svg: $("canvas"),
  nodes: $("nodes"),
  edges: $("edges"),
  empty: $("empty"),
  execution: $("execution-body"),
  log: document.querySelector("#log tbody"),
  lastId: $("last-id"),
  stats: { events: $("stat-events"), duplicates: $("stat-duplicates"), reconnects: $("stat-reconnects"), resets: $("stat-resets") },
};

let sub;
let store;
let seq = 0;
let frame = 0;
let viewBox = { x: 0, y: 0, w: 900, h: 560 };
const nodeEls = new Map();
const edgeEls = new Map();
const lastPos = new Map();

function open(flowId) {
  sub?.close();
  seq = 0;
  els.log.replaceChildren();
  els.nodes.replaceChildren();
  els.edges.replaceChildren();
  nodeEls.clear();
  edgeEls.clear();
  lastPos.clear();
  viewBox = { x: 0, y: 0, w: 900, h: 560 };
  const url = new URL(location.href);
  url.searchParams.set("flow", flowId);
  history.replaceState(null, "", url);
  document.title = `${flowId} · flowsync inspector`;

  store = createFlowStore();
  store.subscribe(scheduleRender);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  sub = subscribeFlow(
    "",
    flowId,
    {
      onEvent: (event, { cursor }) => {
        const d = event.data;
        logRow("event", { type: event.type, op: d.op, id: d.id, cursor, entity: event.type === "SYNC_CANVAS" ? d.entity : "" });
      },
      onSnapshot: (s, { reason }) => {
        const count = Object.values(s.canvas).reduce((n, docs) => n + docs.length, 0);
        logRow("meta", { type: "SNAPSHOT", op: reason, id: `${count} canvas docs`, cursor: s.cursor });
      },
      onReset: (d) => logRow("reset", { type: "RESET", op: d.reason, id: "", cursor: "" }),
      onState: (state, info) => {
        els.state.textContent = state;
        els.state.dataset.state = state;
        els.drop.disabled = state === "closed";
        logRow("state", { type: "state", op: state, id: info.error ? info.error.message : "", cursor: info.lastEventId ?? "" });
        scheduleRender();
      },
      onError: (err) => console.warn("flowsync:", err),
    },
    { basePath, store, ...(token ? { getToken: () => token } : {}) },
  );
  els.state.textContent = sub.state;
  els.state.dataset.state = sub.state;
  els.drop.disabled = false;
}

function logRow(kind, { type, op, id, cursor, entity = "" }) {
  const tr = document.createElement("tr");
  tr.className = kind;
  tr.dataset.seq = String(++seq);
  tr.dataset.type = type;
  tr.dataset.op = op ?? "";
  tr.dataset.id = id ?? "";
  tr.dataset.cursor = cursor ?? "";
  const cells = [String(seq), entity ? `${type}·${entity}` : type, op ?? "", id ?? "", cursor ?? ""];
  const classes = ["seq", "type", `op op-${op}`, "id", "cursor"];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.className = classes[i];
    td.textContent = text;
    td.title = text;
    tr.append(td);
  });
  els.log.prepend(tr);
  while (els.log.rows.length > MAX_LOG_ROWS) els.log.lastElementChild.remove();
}

function scheduleRender() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function num(v, fallback = 0) {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

function label(doc) {
  const d = doc.data && typeof doc.data === "object" ? doc.data : {};
  const text = d.label ?? d.text ?? d.model ?? doc.name ?? doc._id;
  const s = typeof text === "string" ? text : JSON.stringify(text);
  return s.length > 20 ? `${s.slice(0, 19)}…` : s;
}

function render() {
  if (!store) return;
  const state = store.getState();
  const jobs = (state.execution && typeof state.execution.jobs === "object" && state.execution.jobs) || {};

  // Nodes: keyed elements, moved with a transform (CSS animates it).
  const seen = new Set();
  for (const [id, doc] of Object.entries(state.nodes)) {
    seen.add(id);
    const x = num(doc.position?.x);
    const y = num(doc.position?.y);
    let g = nodeEls.get(id);
    if (!g) {
      g = document.createElementNS(SVG, "g");
      g.classList.add("node");
      g.dataset.id = id;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("width", NODE_W);
      rect.setAttribute("height", NODE_H);
      const kind = document.createElementNS(SVG, "text");
      kind.classList.add("kind");
      kind.setAttribute("x", 12);
      kind.setAttribute("y", 17);
      const text = document.createElementNS(SVG, "text");
      text.classList.add("label");
      text.setAttribute("x", 12);
      text.setAttribute("y", 35);
      const dot = document.createElementNS(SVG, "circle");
      dot.classList.add("status");
      dot.setAttribute("cx", NODE_W - 12);
      dot.setAttribute("cy", 13);
      g.append(rect, kind, text, dot);
      els.nodes.append(g);
      nodeEls.set(id, g);
    }
    const prev = lastPos.get(id);
    if (prev && (prev.x !== x || prev.y !== y)) flash(g);
    lastPos.set(id, { x, y });
    g.dataset.x = String(x);
    g.dataset.y = String(y);
    g.setAttribute("transform", `translate(${x} ${y})`);
    g.querySelector("text.kind").textContent = typeof doc.type === "string" ? doc.type : "node";
    g.querySelector("text.label").textContent = label(doc);
    const status = typeof jobs[id] === "string" ? jobs[id] : "";
    g.querySelector("circle.status").setAttribute("class", `status ${status}`);
  }
  for (const [id, g] of nodeEls) {
    if (!seen.has(id)) {
      g.remove();
      nodeEls.delete(id);
      lastPos.delete(id);
    }
  }

  // Edges: lines between node boxes, clipped at their borders.
  const seenEdges = new Set();
  for (const [id, doc] of Object.entries(state.edges)) {
    const a = state.nodes[String(doc.source)];
    const b = state.nodes[String(doc.target)];
    if (!a || !b) continue;
    seenEdges.add(id);
    let line = edgeEls.get(id);
    if (!line) {
      line = document.createElementNS(SVG, "line");
      line.dataset.id = id;
      els.edges.append(line);
      edgeEls.set(id, line);
    }
    const ca = { x: num(a.position?.x) + NODE_W / 2, y: num(a.position?.y) + NODE_H / 2 };
    const cb = { x: num(b.position?.x) + NODE_W / 2, y: num(b.position?.y) + NODE_H / 2 };
    const p = clip(ca, cb);
    const q = clip(cb, ca);
    line.setAttribute("x1", p.x);
    line.setAttribute("y1", p.y);
    line.setAttribute("x2", q.x);
    line.setAttribute("y2", q.y);
    line.dataset.source = String(doc.source);
    line.dataset.target = String(doc.target);
  }
  for (const [id, line] of edgeEls) {
    if (!seenEdges.has(id)) {
      line.remove();
      edgeEls.delete(id);
    }
  }

  fitViewBox(state.nodes);
  els.empty.hidden = nodeEls.size > 0;
  renderExecution(state.execution);
  if (sub) {
    for (const [k, el] of Object.entries(els.stats)) el.textContent = String(sub.stats[k]);
    els.lastId.textContent = sub.lastEventId ?? "–";
    els.lastId.title = sub.lastEventId ?? "";
  }
}

/** Where the segment from box centre `c` towards `other` leaves the box. */
function clip(c, other) {
  const dx = other.x - c.x;
  const dy = other.y - c.y;
  if (dx === 0 && dy === 0) return c;
  const t = Math.min(dx === 0 ? Infinity : NODE_W / 2 / Math.abs(dx), dy === 0 ? Infinity : NODE_H / 2 / Math.abs(dy));
  return { x: c.x + dx * Math.min(t, 1), y: c.y + dy * Math.min(t, 1) };
}

/** The view grows to show every node, and never shrinks while a flow is open (no jumping). */
function fitViewBox(nodes) {
  let { x, y, w, h } = viewBox;
  let x2 = x + w;
  let y2 = y + h;
  for (const doc of Object.values(nodes)) {
    const nx = num(doc.position?.x);
    const ny = num(doc.position?.y);
    x = Math.min(x, nx - 30);
    y = Math.min(y, ny - 30);
    x2 = Math.max(x2, nx + NODE_W + 30);
    y2 = Math.max(y2, ny + NODE_H + 30);
  }
  if (x !== viewBox.x || y !== viewBox.y || x2 - x !== viewBox.w || y2 - y !== viewBox.h) {
    viewBox = { x, y, w: x2 - x, h: y2 - y };
    els.svg.setAttribute("viewBox", `${x} ${y} ${viewBox.w} ${viewBox.h}`);
  }
}

function renderExecution(exec) {
  if (!exec) {
    els.execution.className = "muted";
    els.execution.textContent = "none";
    return;
  }
  const progress = Math.max(0, Math.min(100, num(exec.progress)));
  els.execution.className = "";
  els.execution.innerHTML = "";
  const head = document.createElement("div");
  const status = document.createElement("strong");
  status.textContent = String(exec.status ?? "unknown");
  const id = document.createElement("span");
  id.className = "muted";
  id.textContent = `  ${exec._id}`;
  head.append(status, id);
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("div");
  fill.style.width = `${progress}%`;
  bar.append(fill);
  const pct = document.createElement("div");
  pct.className = "muted";
  pct.id = "execution-progress";
  pct.textContent = `${progress}%`;
  els.execution.append(head, bar, pct);
}

function flash(g) {
  g.classList.add("flash");
  clearTimeout(g._flash);
  g._flash = setTimeout(() => g.classList.remove("flash"), 600);
}

els.form.addEventListener("submit", (e) => {
  e.preventDefault();
  const flowId = els.flow.value.trim();
  if (flowId) open(flowId);
});
els.drop.addEventListener("click", () => sub?.reconnect(1500));

const initial = new URLSearchParams(location.search).get("flow") ?? "demo-flow";
els.flow.value = initial;
open(initial);
