// The emulator's web console. Plain script, no build step, no dependencies: the emulator
// serves this file as it is. Control endpoints get the account key in `x-ms-emulator-key`;
// storage calls go to /_emulator/blob/ and /_emulator/queue/ with an account SAS made here
// from the key (HMAC-SHA256 below, since WebCrypto is missing outside secure contexts).
"use strict";

const $ = (sel) => document.querySelector(sel);
const enc = new TextEncoder();
const SAS_VERSION = "2021-06-08";
const state = {
  account: "", key: "", sas: "", tab: "containers",
  container: null, prefix: "", blob: null, queue: null,
  samples: [], stream: null,
};

// ---- SHA-256 and HMAC (FIPS 180-4, RFC 2104) ----
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256(data) {
  const bitLen = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  h.forEach((v, i) => ov.setUint32(i * 4, v));
  return out;
}

function hmacSha256(key, message) {
  if (key.length > 64) key = sha256(key);
  const block = new Uint8Array(64);
  block.set(key);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) { inner[i] = block[i] ^ 0x36; outer[i] = block[i] ^ 0x5c; }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

const toBase64 = (bytes) => { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); };
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** An account SAS for both services, every resource type and permission, valid for 30
 * days of the emulator's clock (which may have been moved far from the browser's). */
function accountSas(account, key, nowMs) {
  const p = { sv: SAS_VERSION, ss: "bq", srt: "sco", sp: "rwdxlacuptf", spr: "https,http",
    se: new Date(nowMs + 30 * 86400e3).toISOString().replace(/\.\d{3}Z$/, "Z") };
  const toSign = [account, p.sp, p.ss, p.srt, "", p.se, "", p.spr, p.sv, ""].join("\n") + "\n";
  p.sig = toBase64(hmacSha256(fromBase64(key), enc.encode(toSign)));
  return new URLSearchParams(p).toString();
}

// ---- talking to the emulator ----
class AzureError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function failure(r) {
  const text = await r.text();
  let code = r.headers.get("x-ms-error-code") || "";
  let message = text;
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (!doc.querySelector("parsererror")) {
    code = code || doc.querySelector("Code")?.textContent || "";
    message = doc.querySelector("Message")?.textContent || text;
  }
  return new AzureError(r.status, code || String(r.status), message.split("\n")[0]);
}

async function control(method, path, body) {
  const headers = { "x-ms-emulator-key": state.key };
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch("/_emulator/" + path, { method, headers, body });
  if (!r.ok) throw await failure(r);
  return r;
}

const encodePath = (name) => name.split("/").map(encodeURIComponent).join("/");

function storageUrl(service, path, query) {
  return `/_emulator/${service}/${state.account}${path}?${query ? query + "&" : ""}${state.sas}`;
}

async function storage(service, method, path, query, headers = {}, body) {
  const r = await fetch(storageUrl(service, path, query), {
    method, body, headers: { "x-ms-version": SAS_VERSION, ...headers },
  });
  if (!r.ok) throw await failure(r);
  return r;
}

const xml = async (r) => new DOMParser().parseFromString(await r.text(), "application/xml");
const text = (node, sel) => node.querySelector(sel)?.textContent ?? "";

// ---- small DOM helpers ----
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") e.addEventListener("click", v);
    else if (k === "class") e.className = v;
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const button = (label, onclick, extra = {}) => el("button", { type: "button", onclick: guard(onclick), ...extra }, label);
function cell(content, cls) { return el("td", cls ? { class: cls } : {}, content); }
function fill(tbody, rows, emptyText) {
  tbody.replaceChildren(...rows);
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "meta" }, emptyText)));
}
function definitions(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  if (!pairs.length) dl.append(el("dt", {}, "none"), el("dd", {}, ""));
}
const bytes = (n) => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;

function showError(e) {
  const box = $("#error");
  box.replaceChildren();
  if (e instanceof AzureError) {
    box.append(el("code", {}, e.code), ` (${e.status}): ${e.message}`);
  } else {
    box.append(String(e && e.message || e));
  }
  box.hidden = false;
}
function clearError() { $("#error").hidden = true; }

/** Runs a handler, showing its failure as the Azure error code and message. */
function guard(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault && ev.type === "submit") ev.preventDefault();
    try { clearError(); await fn(ev); } catch (e) { showError(e); }
  };
}

// ---- session ----
async function signIn(account, key) {
  state.account = account; state.key = key.trim();
  const clock = await (await control("GET", "clock")).json();
  state.sas = accountSas(account, state.key, clock.nowMs);
  // A key of another account signs a SAS this account refuses: check before going on.
  await storage("blob", "GET", "", "comp=list&maxresults=1");
  sessionStorage.setItem("console", JSON.stringify({ account, key: state.key }));
  const { accounts } = await (await control("GET", "accounts")).json();
  $("#account-select").replaceChildren(...accounts.map((a) => el("option", { value: a, ...(a === account ? { selected: "" } : {}) }, a)));
  $("#sign-in").hidden = true;
  $("#app").hidden = false;
  $("#session").hidden = false;
  showClock(clock);
  startActivity();
  await selectTab("containers");
}

function signOut() {
  sessionStorage.removeItem("console");
  if (state.stream) state.stream.abort();
  location.reload();
}

function showClock(c) {
  const offset = c.offsetSeconds ? ` (moved ${c.offsetSeconds} s)` : "";
  $("#clock-now").textContent = `Emulator clock ${c.now.replace(/\.\d+Z$/, "Z")}${offset}`;
  $("#clock-detail").textContent = `Now ${c.now}, ${c.offsetSeconds} s ahead of the system clock.`;
}

// ---- tabs (arrow keys move between them) ----
const TABS = ["containers", "queues", "activity", "faults", "state"];
async function selectTab(name) {
  state.tab = name;
  for (const t of TABS) {
    const tab = $(`#tab-${t}`);
    tab.setAttribute("aria-selected", String(t === name));
    tab.tabIndex = t === name ? 0 : -1;
    $(`#panel-${t}`).hidden = t !== name;
  }
  if (name === "containers") await loadContainers();
  if (name === "queues") await loadQueues();
  if (name === "faults") await loadFaults();
  if (name === "state") await loadState();
}

// ---- containers and blobs ----
async function loadContainers() {
  const doc = await xml(await storage("blob", "GET", "", "comp=list"));
  const rows = [...doc.querySelectorAll("Container")].map((c) => {
    const name = text(c, "Name");
    return el("tr", name === state.container ? { class: "selected" } : {},
      cell(button(name, () => openContainer(name, ""), { class: "link", "data-container": name })),
      cell(text(c, "Last-Modified")),
      cell(button("Delete", async () => {
        if (!confirm(`Delete container ${name} and everything in it?`)) return;
        await storage("blob", "DELETE", `/${name}`, "restype=container");
        if (state.container === name) { state.container = null; $("#container-view").hidden = true; }
        await loadContainers();
      }, { "aria-label": `Delete container ${name}` })));
  });
  fill($("#container-list tbody"), rows, "No containers yet.");
}

async function openContainer(name, prefix) {
  state.container = name; state.prefix = prefix; state.blob = null;
  $("#container-view").hidden = false;
  $("#blob-details").hidden = true;
  $("#container-title").textContent = name;
  const crumbs = [button(name, () => openContainer(name, ""), { class: "link" })];
  let acc = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    acc += part + "/";
    const at = acc;
    crumbs.push(el("span", { "aria-hidden": "true" }, "/"), button(part, () => openContainer(name, at), { class: "link" }));
  }
  $("#crumbs").replaceChildren(...crumbs);
  for (const b of document.querySelectorAll("#container-list tbody button.link")) {
    b.closest("tr").className = b.dataset.container === name ? "selected" : "";
  }
  await listBlobs();
}

async function listBlobs() {
  const { container, prefix } = state;
  const rows = [];
  let marker = "";
  for (let page = 0; page < 10; page++) {
    const q = new URLSearchParams({ restype: "container", comp: "list", delimiter: "/", prefix,
      include: "snapshots,metadata,tags,versions" });
    if (marker) q.set("marker", marker);
    const doc = await xml(await storage("blob", "GET", `/${container}`, q.toString()));
    for (const p of doc.querySelectorAll("BlobPrefix")) {
      const full = text(p, "Name");
      rows.push(el("tr", { class: "folder" },
        cell(button(full.slice(prefix.length), () => openContainer(container, full), { class: "link", "data-prefix": full })),
        cell(""), cell("folder"), cell(""), cell("")));
    }
    for (const b of doc.querySelectorAll("Blob")) rows.push(blobRow(b));
    marker = text(doc, "NextMarker");
    if (!marker) break;
  }
  fill($("#blob-list tbody"), rows, "Nothing here.");
}

function blobRow(b) {
  const name = text(b, "Name");
  const snapshot = text(b, "Snapshot");
  const version = text(b, "VersionId");
  const current = text(b, "IsCurrentVersion") === "true";
  const which = snapshot ? { snapshot } : version && !current ? { versionid: version } : {};
  const label = name.slice(state.prefix.length);
  const badge = snapshot ? ` (snapshot ${snapshot})` : version && !current ? ` (version ${version})` : "";
  const size = Number(text(b, "Content-Length") || 0);
  const q = new URLSearchParams(which).toString();
  const download = el("a", { href: storageUrl("blob", `/${state.container}/${encodePath(name)}`, q), download: name.split("/").pop() }, "Download");
  return el("tr", { "data-blob": name },
    cell(el("span", {}, label, el("span", { class: "meta" }, badge))),
    cell(bytes(size), "num"),
    cell(text(b, "BlobType")),
    cell(text(b, "Last-Modified")),
    cell(el("div", { class: "actions" },
      button("Properties", () => showBlob(name, q), { "aria-label": `Properties of ${label}${badge}` }),
      download,
      button("Delete", async () => {
        if (!confirm(`Delete ${name}${badge}?`)) return;
        const hasSnapshots = !q && [...document.querySelectorAll("#blob-list tr")].filter((r) => r.dataset.blob === name).length > 1;
        await storage("blob", "DELETE", `/${state.container}/${encodePath(name)}`, q,
          hasSnapshots ? { "x-ms-delete-snapshots": "include" } : {});
        await listBlobs();
      }, { "aria-label": `Delete ${label}${badge}` }))));
}

const SHOWN = ["content-length", "content-type", "etag", "last-modified", "x-ms-creation-time",
  "x-ms-blob-type", "x-ms-access-tier", "x-ms-access-tier-inferred", "x-ms-lease-state", "x-ms-lease-status",
  "x-ms-lease-duration", "x-ms-version-id", "x-ms-is-current-version", "x-ms-tag-count",
  "x-ms-copy-status", "x-ms-copy-source", "content-md5", "x-ms-blob-sequence-number", "x-ms-blob-committed-block-count"];

async function showBlob(name, query) {
  state.blob = { name, query };
  const path = `/${state.container}/${encodePath(name)}`;
  const r = await storage("blob", "HEAD", path, query);
  const props = SHOWN.filter((h) => r.headers.has(h)).map((h) => [h, r.headers.get(h)]);
  const meta = [...r.headers.entries()].filter(([h]) => h.startsWith("x-ms-meta-")).map(([h, v]) => [h.slice(10), v]);
  $("#blob-details-title").textContent = `Properties of ${name}`;
  definitions($("#blob-props"), props);
  definitions($("#blob-meta"), meta);
  $("#meta-text").value = meta.map(([k, v]) => `${k}=${v}`).join("\n");
  let tags = [];
  try {
    const doc = await xml(await storage("blob", "GET", path, (query ? query + "&" : "") + "comp=tags"));
    tags = [...doc.querySelectorAll("Tag")].map((t) => [text(t, "Key"), text(t, "Value")]);
  } catch (e) { tags = [["unavailable", e.code || e.message]]; }
  definitions($("#blob-tags"), tags);
  $("#blob-details").hidden = false;
  $("#blob-details").scrollIntoView({ block: "nearest" });
}

async function blobAction(query, headers) {
  if (!state.blob) return;
  const path = `/${state.container}/${encodePath(state.blob.name)}`;
  await storage("blob", "PUT", path, query, headers);
  await showBlob(state.blob.name, state.blob.query);
}

// ---- queues ----
async function queueDepth(name) {
  const r = await storage("queue", "GET", `/${name}`, "comp=metadata");
  return Number(r.headers.get("x-ms-approximate-messages-count") || 0);
}

async function loadQueues() {
  const doc = await xml(await storage("queue", "GET", "", "comp=list"));
  const names = [...doc.querySelectorAll("Queue")].map((q) => text(q, "Name"));
  const depths = await Promise.all(names.map(queueDepth));
  const rows = names.map((name, i) => el("tr", name === state.queue ? { class: "selected" } : {},
    cell(button(name, () => openQueue(name), { class: "link", "data-queue": name })),
    cell(String(depths[i]), "num depth"),
    cell(el("div", { class: "actions" },
      button("Peek", () => openQueue(name), { "aria-label": `Peek messages of ${name}` }),
      button("Clear", async () => {
        if (!confirm(`Remove every message of ${name}?`)) return;
        await storage("queue", "DELETE", `/${name}/messages`, "");
        await loadQueues();
        if (state.queue === name) await peek();
      }, { "aria-label": `Clear ${name}` }),
      button("Delete", async () => {
        if (!confirm(`Delete queue ${name}?`)) return;
        await storage("queue", "DELETE", `/${name}`, "");
        if (state.queue === name) { state.queue = null; $("#queue-view").hidden = true; }
        await loadQueues();
      }, { "aria-label": `Delete queue ${name}` })))));
  fill($("#queue-list tbody"), rows, "No queues yet.");
}

async function openQueue(name) {
  state.queue = name;
  $("#queue-view").hidden = false;
  $("#queue-title").textContent = name;
  for (const b of document.querySelectorAll("#queue-list tbody button.link")) {
    b.closest("tr").className = b.dataset.queue === name ? "selected" : "";
  }
  await peek();
}

/** What a message's text may be: as is, base64 of UTF-8 text, JSON (either way). */
function decodings(raw) {
  const out = [];
  let decoded = null;
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(raw) && raw.length % 4 === 0) {
    try {
      const t = new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(raw));
      if (!/[\u0000-\u0008\u000e-\u001f]/.test(t)) decoded = t;
    } catch (_) { /* not text */ }
  }
  if (decoded !== null) out.push(["base64-decoded", decoded]);
  for (const [label, t] of [["JSON", raw], ["JSON (base64-decoded)", decoded]]) {
    if (t === null) continue;
    try {
      const v = JSON.parse(t);
      if (typeof v === "object" && v !== null) out.push([label, JSON.stringify(v, null, 2)]);
    } catch (_) { /* not JSON */ }
  }
  return out;
}

async function peek() {
  const name = state.queue;
  const doc = await xml(await storage("queue", "GET", `/${name}/messages`, "peekonly=true&numofmessages=32"));
  const items = [...doc.querySelectorAll("QueueMessage")].map((m) => {
    const raw = text(m, "MessageText");
    return el("li", { class: "message" },
      el("div", { class: "meta" }, `id ${text(m, "MessageId")}, inserted ${text(m, "InsertionTime")}, expires ${text(m, "ExpirationTime")}, dequeued ${text(m, "DequeueCount")} times`),
      el("pre", { class: "raw" }, raw),
      ...decodings(raw).map(([label, v]) => el("div", { class: "decoded" }, el("span", { class: "meta" }, label), el("pre", {}, v))));
  });
  $("#messages").replaceChildren(...items);
  if (!items.length) $("#messages").append(el("li", { class: "meta" }, "No visible messages."));
  const depth = await queueDepth(name);
  const cellEl = document.querySelector(`#queue-list button[data-queue="${CSS.escape(name)}"]`)?.closest("tr").querySelector(".depth");
  if (cellEl) cellEl.textContent = String(depth);
}

const escapeXml = (s) => s.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);

// ---- activity: request log (live) and metrics ----
function logRow(e) {
  const bad = e.status >= 400 || e.status === 0;
  return el("tr", { class: bad ? "bad" : "", "data-status": e.status, "data-operation": e.operation },
    cell(e.time.replace(/^.*T/, "").replace(/Z$/, "")), cell(e.service), cell(e.operation),
    cell(e.resource), cell(e.status === 0 ? "reset" : String(e.status)), cell(e.errorCode || ""),
    cell((e.latencyMicros / 1000).toFixed(1), "num"), cell(e.principal));
}

function addLog(entries) {
  const body = $("#request-log tbody");
  const errorsOnly = $("#log-errors-only").checked;
  for (const e of entries) {
    const row = logRow(e);
    if (errorsOnly && !row.classList.contains("bad")) row.hidden = true;
    body.prepend(row);
  }
  while (body.rows.length > 300) body.lastElementChild.remove();
}

async function followLog() {
  const initial = await (await control("GET", "requests?limit=100")).json();
  $("#request-log tbody").replaceChildren();
  addLog(initial.requests);
  let last = initial.requests.length ? initial.requests[initial.requests.length - 1].seq : 0;
  // EventSource cannot send the key header: read the event stream with fetch.
  for (let attempt = 0; attempt < 1000; attempt++) {
    const abort = new AbortController();
    state.stream = abort;
    try {
      const r = await fetch("/_emulator/requests?stream=true", { headers: { "x-ms-emulator-key": state.key }, signal: abort.signal });
      if (!r.ok) throw await failure(r);
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (!chunk.includes("event: request") || !data) continue;
          const entry = JSON.parse(data);
          if (entry.seq > last) { last = entry.seq; addLog([entry]); }
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function parseMetrics(body) {
  const m = { total: 0, errors: 0, figures: {} };
  for (const line of body.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, , labels = "", value] = match;
    const v = Number(value);
    if (name === "azure_emulator_requests_total") {
      m.total += v;
      const status = Number(/status="(\d+)"/.exec(labels)?.[1] || 0);
      if (status >= 400 || status === 0) m.errors += v;
    } else if (["azure_emulator_queue_messages", "azure_emulator_blobs", "azure_emulator_blob_bytes"].includes(name)) {
      m.figures[name] = (m.figures[name] || 0) + v;
    } else if (["azure_emulator_group_commits_total", "azure_emulator_store_disk_bytes", "azure_emulator_events_waiting"].includes(name)) {
      m.figures[name] = v;
    }
  }
  return m;
}

function drawChart(svg, values) {
  const max = Math.max(1, ...values);
  const step = 240 / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(58 - (v / max) * 56).toFixed(1)}`).join(" ");
  svg.replaceChildren();
  const axis = document.createElementNS("http://www.w3.org/2000/svg", "line");
  for (const [k, v] of [["x1", 0], ["y1", 58], ["x2", 240], ["y2", 58]]) axis.setAttribute(k, v);
  svg.append(axis);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.append(line);
}

async function sampleMetrics() {
  const m = parseMetrics(await (await control("GET", "metrics")).text());
  const now = performance.now();
  state.samples.push({ t: now, total: m.total, errors: m.errors });
  if (state.samples.length > 61) state.samples.shift();
  const rates = (key) => state.samples.slice(1).map((s, i) => {
    const prev = state.samples[i];
    return Math.max(0, (s[key] - prev[key]) / ((s.t - prev.t) / 1000));
  });
  const req = rates("total"), err = rates("errors");
  drawChart($("#chart-requests"), req);
  drawChart($("#chart-errors"), err);
  $("#rate-requests").textContent = `${(req[req.length - 1] || 0).toFixed(1)}/s, ${m.total} in all`;
  $("#rate-errors").textContent = `${(err[err.length - 1] || 0).toFixed(1)}/s, ${m.errors} in all`;
  const f = m.figures;
  definitions($("#metric-figures"), [
    ["Queued messages", String(f.azure_emulator_queue_messages || 0)],
    ["Blobs", `${f.azure_emulator_blobs || 0} (${bytes(f.azure_emulator_blob_bytes || 0)})`],
    ["Group commits", String(f.azure_emulator_group_commits_total || 0)],
    ["Store on disk", bytes(f.azure_emulator_store_disk_bytes || 0)],
    ["Events waiting", String(f.azure_emulator_events_waiting || 0)],
  ]);
}

function startActivity() {
  followLog().catch(showError);
  const tick = async () => {
    try {
      await sampleMetrics();
      showClock(await (await control("GET", "clock")).json());
    } catch (e) { /* shown on the next user action */ }
  };
  tick();
  setInterval(tick, 2000);
}

// ---- faults ----
async function loadFaults() {
  const { rules } = await (await control("GET", "faults")).json();
  const rows = rules.map((r) => {
    const { id, hits, remaining, ...spec } = r;
    return el("tr", { "data-rule": id },
      cell(String(id)), cell(el("code", {}, JSON.stringify(spec))), cell(String(hits), "num"),
      cell(remaining === undefined ? "until removed" : String(remaining), "num"),
      cell(button("Remove", async () => { await control("DELETE", `faults/${id}`); await loadFaults(); }, { "aria-label": `Remove rule ${id}` })));
  });
  fill($("#fault-list tbody"), rows, "No rules: every request is served normally.");
}

async function addFault() {
  const spec = {};
  const v = (id) => $(id).value.trim();
  if (v("#fault-operation")) spec.operation = v("#fault-operation");
  if (v("#fault-resource")) spec.resource = v("#fault-resource");
  if (v("#fault-status")) spec.status = Number(v("#fault-status"));
  if (v("#fault-code")) spec.errorCode = v("#fault-code");
  if (v("#fault-count")) spec.count = Number(v("#fault-count"));
  if (v("#fault-probability") && Number(v("#fault-probability")) < 1) spec.probability = Number(v("#fault-probability"));
  await control("POST", "faults", JSON.stringify(spec));
  await loadFaults();
}

// ---- clock and state ----
async function loadState() {
  showClock(await (await control("GET", "clock")).json());
  const { snapshots } = await (await control("GET", "snapshots")).json();
  fill($("#snapshot-list tbody"), snapshots.map((s) => el("tr", {},
    cell(s.name), cell(s.created), cell(String(s.records), "num"), cell(bytes(s.bodyBytes), "num"),
    cell(el("div", { class: "actions" },
      button("Restore", async () => {
        if (!confirm(`Replace the whole state with snapshot ${s.name}?`)) return;
        await control("POST", `snapshots/${encodeURIComponent(s.name)}/restore`);
        await loadState();
      }, { "aria-label": `Restore snapshot ${s.name}` }),
      button("Delete", async () => { await control("DELETE", `snapshots/${encodeURIComponent(s.name)}`); await loadState(); }, { "aria-label": `Delete snapshot ${s.name}` }))))),
  "No snapshots.");
  const events = await (await control("GET", "events")).json();
  $("#events-waiting").textContent = String(events.waiting);
  fill($("#event-list tbody"), events.subscriptions.map((s) => el("tr", {},
    cell(s.name),
    cell(`${s.account}${s.container ? "/" + s.container : ""} ${s.includedEventTypes.length ? s.includedEventTypes.map((t) => t.split(".").pop()).join(", ") : "all events"}`),
    cell(`${s.queueAccount}/${s.queue}`),
    cell(button("Remove", async () => { await control("DELETE", `events/${encodeURIComponent(s.name)}`); await loadState(); }, { "aria-label": `Remove subscription ${s.name}` })))),
  "No subscriptions.");
}

// ---- wiring ----
function wire() {
  $("#sign-in-form").addEventListener("submit", guard(() => signIn($("#account-name").value.trim(), $("#account-key").value)));
  $("#sign-out").addEventListener("click", signOut);
  $("#account-select").addEventListener("change", (ev) => {
    // Each account signs with its own key.
    sessionStorage.removeItem("console");
    sessionStorage.setItem("console-account", ev.target.value);
    location.reload();
  });
  for (const t of TABS) $(`#tab-${t}`).addEventListener("click", guard(() => selectTab(t)));
  $("#tabs").addEventListener("keydown", (ev) => {
    const i = TABS.indexOf(state.tab);
    const next = ev.key === "ArrowRight" ? (i + 1) % TABS.length : ev.key === "ArrowLeft" ? (i + TABS.length - 1) % TABS.length : -1;
    if (next < 0) return;
    ev.preventDefault();
    guard(() => selectTab(TABS[next]))();
    $(`#tab-${TABS[next]}`).focus();
  });
  $("#container-create").addEventListener("submit", guard(async () => {
    const name = $("#new-container").value.trim();
    await storage("blob", "PUT", `/${name}`, "restype=container");
    $("#new-container").value = "";
    await loadContainers();
  }));
  $("#blob-upload").addEventListener("submit", guard(async () => {
    for (const file of $("#upload-file").files) {
      await storage("blob", "PUT", `/${state.container}/${encodePath(state.prefix + file.name)}`, "",
        { "x-ms-blob-type": "BlockBlob", "content-type": file.type || "application/octet-stream" }, file);
    }
    $("#upload-file").value = "";
    await listBlobs();
  }));
  $("#lease-acquire").addEventListener("click", guard(() => blobAction("comp=lease", { "x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1" })));
  $("#lease-break").addEventListener("click", guard(() => blobAction("comp=lease", { "x-ms-lease-action": "break", "x-ms-lease-break-period": "0" })));
  $("#blob-snapshot").addEventListener("click", guard(async () => { await blobAction("comp=snapshot", {}); await listBlobs(); }));
  $("#meta-form").addEventListener("submit", guard(async () => {
    const headers = {};
    for (const line of $("#meta-text").value.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) headers[`x-ms-meta-${line.slice(0, at).trim()}`] = line.slice(at + 1).trim();
    }
    await blobAction("comp=metadata", headers);
  }));
  $("#queue-create").addEventListener("submit", guard(async () => {
    await storage("queue", "PUT", `/${$("#new-queue").value.trim()}`, "");
    $("#new-queue").value = "";
    await loadQueues();
  }));
  $("#message-put").addEventListener("submit", guard(async () => {
    const raw = $("#message-text").value;
    const body = $("#message-base64").checked ? toBase64(enc.encode(raw)) : raw;
    await storage("queue", "POST", `/${state.queue}/messages`, "", { "content-type": "application/xml" },
      `<QueueMessage><MessageText>${escapeXml(body)}</MessageText></QueueMessage>`);
    $("#message-text").value = "";
    await peek();
  }));
  $("#log-errors-only").addEventListener("change", (ev) => {
    for (const row of $("#request-log tbody").rows) row.hidden = ev.target.checked && !row.classList.contains("bad");
  });
  $("#fault-add").addEventListener("submit", guard(addFault));
  $("#fault-clear").addEventListener("click", guard(async () => { await control("DELETE", "faults"); await loadFaults(); }));
  $("#clock-advance").addEventListener("submit", guard(async () => {
    const c = await (await control("POST", `clock/advance?seconds=${encodeURIComponent($("#clock-seconds").value)}`)).json();
    state.sas = accountSas(state.account, state.key, c.nowMs);
    showClock(c);
  }));
  $("#snapshot-take").addEventListener("submit", guard(async () => {
    await control("POST", `snapshots/${encodeURIComponent($("#snapshot-name").value.trim())}`);
    $("#snapshot-name").value = "";
    await loadState();
  }));
  $("#event-add").addEventListener("submit", guard(async () => {
    await control("POST", "events", $("#event-json").value);
    await loadState();
  }));
  $("#reset-account").addEventListener("click", guard(async () => {
    if (!confirm(`Delete every queue and container of ${state.account}?`)) return;
    await control("POST", `reset?account=${encodeURIComponent(state.account)}`);
    state.container = null; state.queue = null;
    $("#container-view").hidden = true; $("#queue-view").hidden = true;
    await loadState();
  }));
  const saved = JSON.parse(sessionStorage.getItem("console") || "null");
  const account = sessionStorage.getItem("console-account");
  if (account) $("#account-name").value = account;
  if (saved) guard(() => signIn(saved.account, saved.key))();
}

document.addEventListener("DOMContentLoaded", wire);
