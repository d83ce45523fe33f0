// The inspector page: one flow, live, and the tools to debug it. Plain browser JS (no build
// step), built on the client library, which the server bundles for the browser at ./flowsync-client.js.
//
// URL: /?flow=<flowId>   (optional #token=<jwt>: sent as Authorization, which selects the fetch reader,
// and used for the admin list of flows)
import { createFlowStore, subscribeFlow } from "./flowsync-client.js";

const NODE_W = 150;
const NODE_H = 46;
const MAX_LOG_ROWS = 1000;
const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

const basePath = document.querySelector('meta[name="flowsync-base-path"]').content;
const token = new URLSearchParams(location.hash.slice(1)).get("token");
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
  typeFilter: $("type-filter"),
  search: $("search"),
  pause: $("pause"),
  clear: $("clear"),
  flows: $("flows"),
  flowsNote: $("flows-note"),
  server: { lag: $("server-lag"), subscribers: $("server-subscribers"), watcher: $("server-watcher") },
  presence: $("presence"),
  presenceEmpty: $("presence-empty"),
  payload: {
    title: $("payload-title"),
    cursor: $("payload-cursor"),
    copy: $("copy-cursor"),
    resume: $("resume-from"),
    doc: $("payload-doc"),
    docTitle: $("payload-doc-title"),
    changes: $("payload-changes"),
    changesTitle: $("payload-changes-title"),
  },
};

let sub;
let store;
let flowId;
let seq = 0;
let frame = 0;
let viewBox = { x: 0, y: 0, w: 900, h: 560 };
const nodeEls = new Map();
const edgeEls = new Map();
const lastPos = new Map();
/** seq → what the row shows and the payload pane needs (removed with its row). */
const entries = new Map();
/** Rows received while paused, added on resume. */
let paused = false;
let held = [];
let selected;

function open(id, { from } = {}) {
  sub?.close();
  if (id !== flowId || from === undefined) {
    // Another flow: a fresh canvas and store. A resume keeps them: the replayed events converge to the same state.
    els.nodes.replaceChildren();
    els.edges.replaceChildren();
    nodeEls.clear();
    edgeEls.clear();
    lastPos.clear();
    viewBox = { x: 0, y: 0, w: 900, h: 560 };
    store = createFlowStore();
    store.subscribe(scheduleRender);
    renderPresence(undefined);
  }
  flowId = id;
  clearLog();
  const url = new URL(location.href);
  url.searchParams.set("flow", id);
  history.replaceState(null, "", url);
  document.title = `${id} · flowsync inspector`;
  if (from !== undefined) logRow("meta", { type: "resume", op: "from", id: "", cursor: from });

  sub = subscribeFlow(
    "",
    id,
    {
      onEvent: (event, { cursor }) => {
        const d = event.data;
        logRow("event", {
          type: event.type,
          op: d.op,
          id: d.id,
          cursor,
          entity: event.type === "SYNC_CANVAS" ? d.entity : "",
          clusterTime: d.clusterTime,
          data: d,
        });
      },
      onSnapshot: (s, { reason }) => {
        const count = Object.values(s.canvas).reduce((n, docs) => n + docs.length, 0);
        logRow("meta", { type: "SNAPSHOT", op: reason, id: `${count} canvas docs`, cursor: s.cursor, clusterTime: s.clusterTime, data: s });
      },
      onReset: (d) => logRow("reset", { type: "RESET", op: d.reason, id: "", cursor: "", data: d }),
      onPresence: (d) => {
        renderPresence(d);
        const change = [...d.joined.map((u) => `+${u}`), ...d.left.map((u) => `-${u}`)].join(" ");
        logRow("presence", { type: "PRESENCE", op: `${d.users.length} users`, id: change, cursor: "", data: d });
      },
      onState: (state, info) => {
        els.state.textContent = state;
        els.state.dataset.state = state;
        els.drop.disabled = state === "closed";
        logRow("state", { type: "state", op: state, id: info.error ? info.error.message : "", cursor: info.lastEventId ?? "" });
        scheduleRender();
        // The lists count this stream once it is open: refresh them now rather than at the next poll.
        if (state === "open") poll();
      },
      onError: (err) => console.warn("flowsync:", err),
    },
    // presence: false → ?presence=0: the inspector watches without being listed among the flow's users.
    { basePath, store, presence: false, ...(from !== undefined ? { lastEventId: from } : {}), ...(token ? { getToken: () => token } : {}) },
  );
  els.state.textContent = sub.state;
  els.state.dataset.state = sub.state;
  els.drop.disabled = false;
  renderFlows();
}

// ---- event log ----

function logRow(kind, { type, op, id, cursor, entity = "", clusterTime = "", data }) {
  const entry = { seq: ++seq, kind, type, op: op ?? "", id: id ?? "", cursor: cursor ?? "", entity, clusterTime: clusterTime ?? "", arrival: Date.now(), data };
  entries.set(entry.seq, entry);
  if (paused) {
    held.push(entry);
    // Bounded like the log: a long pause keeps the newest rows only.
    if (held.length > MAX_LOG_ROWS) entries.delete(held.shift().seq);
    els.pause.textContent = `Resume (${held.length})`;
    return;
  }
  addRow(entry);
}

function addRow(entry) {
  const tr = document.createElement("tr");
  tr.className = entry.kind;
  const d = tr.dataset;
  d.seq = String(entry.seq);
  d.type = entry.type;
  d.op = entry.op;
  d.id = entry.id;
  d.cursor = entry.cursor;
  d.clusterTime = entry.clusterTime;
  d.arrival = String(entry.arrival);
  const cells = [
    [String(entry.seq), "seq"],
    [utcTime(new Date(entry.arrival), true), "arrival"],
    [clusterLabel(entry.clusterTime), "cluster"],
    [entry.entity ? `${entry.type}·${entry.entity}` : entry.type, "type"],
    [entry.op, `op op-${entry.op}`],
    [entry.id, "id"],
    [entry.cursor, "cursor"],
  ];
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    td.title = cls === "cluster" ? entry.clusterTime : text;
    tr.append(td);
  }
  tr.hidden = !matches(entry);
  if (selected === entry.seq) tr.classList.add("selected");
  els.log.prepend(tr);
  while (els.log.rows.length > MAX_LOG_ROWS) {
    const last = els.log.lastElementChild;
    entries.delete(Number(last.dataset.seq));
    last.remove();
  }
}

function utcTime(date, ms) {
  return date.toISOString().slice(11, ms ? 23 : 19);
}

/** `"1796298123.6"` → `11:42:03 ·6` (UTC); empty for events without one. */
function clusterLabel(clusterTime) {
  const [t, i] = String(clusterTime).split(".");
  const seconds = Number(t);
  if (!clusterTime || !Number.isFinite(seconds)) return "";
  return `${utcTime(new Date(seconds * 1000), false)} ·${i ?? 0}`;
}

function matches(entry) {
  const type = els.typeFilter.value;
  if (type && entry.type !== type) return false;
  const q = els.search.value.trim().toLowerCase();
  if (!q) return true;
  entry.text ??= [entry.type, entry.entity, entry.op, entry.id, entry.cursor, entry.clusterTime, entry.data === undefined ? "" : JSON.stringify(entry.data)]
    .join(" ")
    .toLowerCase();
  return entry.text.includes(q);
}

function applyFilter() {
  for (const tr of els.log.rows) {
    const entry = entries.get(Number(tr.dataset.seq));
    tr.hidden = !entry || !matches(entry);
  }
}

function clearLog() {
  els.log.replaceChildren();
  entries.clear();
  held = [];
  if (paused) els.pause.textContent = "Resume (0)";
  select(undefined);
}

function setPaused(on) {
  paused = on;
  els.pause.classList.toggle("active", on);
  if (on) {
    els.pause.textContent = `Resume (${held.length})`;
    return;
  }
  els.pause.textContent = "Pause";
  const rows = held;
  held = [];
  for (const entry of rows) addRow(entry);
}

// ---- payload pane ----

function select(seqNo) {
  const entry = seqNo === undefined ? undefined : entries.get(seqNo);
  selected = entry?.seq;
  for (const tr of els.log.querySelectorAll("tr.selected")) tr.classList.remove("selected");
  const p = els.payload;
  p.cursor.textContent = entry?.cursor ?? "";
  p.copy.disabled = !entry?.cursor;
  // A time cursor (a SNAPSHOT's) resumes too; a row without one cannot.
  p.resume.disabled = !entry?.cursor;
  if (!entry) {
    p.title.textContent = "select an event";
    for (const el of [p.doc, p.docTitle, p.changes, p.changesTitle]) el.hidden = true;
    return;
  }
  els.log.querySelector(`tr[data-seq="${entry.seq}"]`)?.classList.add("selected");
  p.title.textContent = `#${entry.seq} ${entry.type}${entry.op ? ` ${entry.op}` : ""}${entry.id ? ` ${entry.id}` : ""}`;
  const d = entry.data;
  // Document events: their doc and changes; anything else (SNAPSHOT, RESET, PRESENCE): the whole data.
  const isDoc = entry.kind === "event";
  show(p.docTitle, p.doc, isDoc ? "doc" : "data", d === undefined ? undefined : isDoc ? d.doc : d);
  show(p.changesTitle, p.changes, "changes", isDoc ? d.changes : undefined);
}

function show(titleEl, preEl, title, value) {
  titleEl.hidden = value === undefined;
  preEl.hidden = value === undefined;
  titleEl.textContent = title;
  preEl.textContent = value === undefined ? "" : JSON.stringify(value, null, 2);
}

async function copyCursor() {
  const cursor = els.payload.cursor.textContent;
  if (!cursor) return;
  try {
    await navigator.clipboard.writeText(cursor);
    flashButton(els.payload.copy, "Copied");
  } catch {
    // No clipboard permission (an http page on another host): select the text for a manual copy.
    getSelection().selectAllChildren(els.payload.cursor);
    flashButton(els.payload.copy, "Selected: press Ctrl+C");
  }
}

function flashButton(button, text) {
  button.textContent = text;
  clearTimeout(button._reset);
  button._reset = setTimeout(() => (button.textContent = "Copy cursor"), 1500);
}

// ---- presence, flows, server ----

function renderPresence(data) {
  els.presence.replaceChildren();
  els.presenceEmpty.hidden = data !== undefined && data.users.length > 0;
  els.presenceEmpty.textContent = data === undefined ? "no PRESENCE event yet" : "nobody";
  if (!data) return;
  for (const user of data.users) {
    const li = document.createElement("li");
    li.dataset.id = user.id;
    li.dataset.connections = String(user.connections);
    const dot = document.createElement("span");
    dot.className = "dot";
    if (typeof user.color === "string") dot.style.background = user.color;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = typeof user.name === "string" ? user.name : user.id;
    name.title = Object.entries(user)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n");
    const n = document.createElement("span");
    n.className = "muted";
    n.textContent = user.connections > 1 ? ` ×${user.connections}` : "";
    li.append(dot, name, n);
    els.presence.append(li);
  }
}

let flowList = [];

async function pollFlows() {
  try {
    const res = await fetch(`${basePath}/flows`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const body = await res.json();
    if (!res.ok) {
      flowList = [];
      els.flowsNote.hidden = false;
      els.flowsNote.textContent =
        res.status === 401 || res.status === 403 ? `needs an admin token (#token=…): ${body.error?.code ?? res.status}` : `${body.error?.code ?? res.status}`;
    } else {
      flowList = body.flows;
      els.flowsNote.hidden = body.total <= body.flows.length;
      els.flowsNote.textContent = `${body.total - body.flows.length} more not shown`;
    }
  } catch (err) {
    els.flowsNote.hidden = false;
    els.flowsNote.textContent = `flows: ${err.message}`;
  }
  renderFlows();
}

function renderFlows() {
  els.flows.replaceChildren();
  for (const f of flowList) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.flowId = f.flowId;
    button.classList.toggle("current", f.flowId === flowId);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = f.flowId;
    const meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = `${f.subscribers} sub${f.subscribers === 1 ? "" : "s"}${f.lastEventAt ? ` · ${ago(f.lastEventAt)}` : ""}`;
    meta.title = f.lastEventAt ? `last event ${f.lastEventAt} (cluster time ${f.lastClusterTime})` : "no event since it had subscribers";
    button.append(name, meta);
    li.append(button);
    els.flows.append(li);
  }
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : utcTime(new Date(iso), false);
}

async function pollServer() {
  try {
    const body = await (await fetch("/readyz")).json();
    els.server.lag.textContent = typeof body.lagSeconds === "number" ? `${body.lagSeconds.toFixed(1)} s` : "–";
    els.server.subscribers.textContent = String(body.subscribers ?? "–");
    els.server.watcher.textContent = `${body.watcher ?? "?"}${body.mongo === "unreachable" ? " (mongo unreachable)" : ""}`;
  } catch (err) {
    els.server.watcher.textContent = `unreachable (${err.message})`;
  }
}

function poll() {
  if (document.hidden) return;
  void pollFlows();
  void pollServer();
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
  const id = els.flow.value.trim();
  if (id) open(id);
});
els.drop.addEventListener("click", () => sub?.reconnect(1500));
els.typeFilter.addEventListener("change", applyFilter);
els.search.addEventListener("input", applyFilter);
els.pause.addEventListener("click", () => setPaused(!paused));
els.clear.addEventListener("click", clearLog);
els.log.addEventListener("click", (e) => {
  const tr = e.target.closest("tr");
  if (tr) select(Number(tr.dataset.seq));
});
els.payload.copy.addEventListener("click", () => void copyCursor());
els.payload.resume.addEventListener("click", () => {
  const cursor = els.payload.cursor.textContent;
  if (cursor && flowId) open(flowId, { from: cursor });
});
els.flows.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-flow-id]");
  if (!button) return;
  els.flow.value = button.dataset.flowId;
  open(button.dataset.flowId);
});

const initial = new URLSearchParams(location.search).get("flow") ?? "demo-flow";
els.flow.value = initial;
open(initial);
poll();
setInterval(poll, POLL_MS);
document.addEventListener("visibilitychange", poll);
