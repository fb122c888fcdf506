// Progressive enhancement. Without JavaScript every page works: the form posts and shows
// the success page, the gallery pages by links, buttons post forms. With it: drag and drop,
// per-file upload progress, live updates pushed by Server-Sent Events (polling the JSON API
// where EventSource is missing or keeps failing), and "Older uploads" appended in place.
"use strict";

function el(tag, attrs, text) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

function size(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
  return (bytes / (1024 * 1024)).toFixed(1) + " MiB";
}

(function dragAndDrop() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const chosen = document.getElementById("chosen");
  if (!zone || !input) return;
  const show = () => {
    const names = Array.from(input.files).map((f) => f.name);
    chosen.textContent = names.length ? names.join(", ") : "";
  };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((t) =>
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) =>
    zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", (e) => {
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      show();
    }
  });
})();

// Each file goes in its own request (two at a time), so each has its own progress bar and
// its own outcome: one rejected file does not take the others with it.
(function uploadWithProgress() {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file-input");
  const list = document.getElementById("progress");
  const done = document.getElementById("progress-done");
  const button = document.getElementById("upload-button");
  if (!form || !input || !list || !window.XMLHttpRequest || !window.FormData) return;
  const maxBytes = Number(form.dataset.maxBytes) || Infinity;
  const maxFiles = Number(form.dataset.maxFiles) || Infinity;

  const row = (file) => {
    const li = el("li", { class: "upload-item", "data-state": "waiting" });
    const name = el("span", { class: "name" }, file.name);
    const bar = el("progress", { max: String(Math.max(file.size, 1)), value: "0" });
    const info = el("span", { class: "bytes" }, "waiting");
    li.append(name, bar, info);
    list.append(li);
    return { file, li, name, bar, info };
  };

  const fail = (r, message) => {
    r.li.dataset.state = "failed";
    r.info.textContent = message;
    r.info.className = "bytes error";
  };

  const send = (r) => new Promise((resolve) => {
    if (r.file.size > maxBytes) {
      fail(r, "larger than the " + size(maxBytes) + " limit");
      return resolve();
    }
    const body = new FormData();
    body.append("images", r.file, r.file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    r.li.dataset.state = "uploading";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      // The request is the file plus a few hundred bytes of form framing.
      const sent = Math.min(r.file.size, Math.round(r.file.size * e.loaded / e.total));
      const pct = Math.floor(100 * e.loaded / e.total);
      r.bar.max = e.total;
      r.bar.value = e.loaded;
      r.info.textContent = size(sent) + " of " + size(r.file.size) + " · " + pct + "%";
    });
    xhr.addEventListener("load", () => {
      let reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 201 && reply.jobs && reply.jobs.length) {
        r.li.dataset.state = "uploaded";
        r.bar.value = r.bar.max;
        const link = el("a", { class: "job-link", href: "/jobs/" + reply.jobs[0] }, r.file.name);
        r.name.replaceWith(link);
        r.info.textContent = size(r.file.size) + " · 100% · queued";
      } else {
        fail(r, (reply.title ? reply.title + ": " : "") + (reply.error || "HTTP " + xhr.status));
      }
      resolve();
    });
    xhr.addEventListener("error", () => { fail(r, "the connection failed"); resolve(); });
    xhr.addEventListener("abort", () => { fail(r, "cancelled"); resolve(); });
    xhr.send(body);
  });

  form.addEventListener("submit", (e) => {
    const files = Array.from(input.files);
    // Nothing chosen: the server's answer says so.
    if (!files.length) return;
    e.preventDefault();
    list.replaceChildren();
    list.hidden = false;
    done.hidden = true;
    if (files.length > maxFiles) {
      list.append(el("li", { class: "error" }, "At most " + maxFiles + " files at once; " + files.length + " chosen."));
      return;
    }
    button.disabled = true;
    const rows = files.map(row);
    let next = 0;
    let active = 0;
    const pump = () => {
      if (next >= rows.length && active === 0) {
        button.disabled = false;
        done.hidden = false;
        input.value = "";
        const chosen = document.getElementById("chosen");
        if (chosen) chosen.textContent = "";
        return;
      }
      while (active < 2 && next < rows.length) {
        active++;
        send(rows[next++]).then(() => { active--; pump(); });
      }
    };
    pump();
  });
})();

// Calls `apply(event, data)` with each update: pushed by the server's event stream
// (`data-stream`), or fetched from `data-live` every second when EventSource is missing or
// the stream keeps failing. `#live` shows which. A hidden tab lets go of its stream (a
// browser allows only six connections to one HTTP/1.1 server, and each open stream holds
// one) and picks it up again when shown.
function live(node, events, apply) {
  const status = document.getElementById("live");
  const mode = (m, text) => { if (status) { status.dataset.mode = m; status.textContent = text; } };
  let stopped = false;
  let es = null;
  const stop = () => { stopped = true; if (es) es.close(); };
  const poll = () => {
    const tick = async () => {
      if (stopped) return;
      if (!document.hidden) {
        try {
          const r = await fetch(node.dataset.live, { headers: { Accept: "application/json" }, cache: "no-store" });
          if (r.ok) { apply(events[0], await r.json(), stop); mode("poll", "live (polling)"); }
          else if (r.status === 404) apply("gone", {}, stop);
          else mode("poll", "storage unavailable");
        } catch (_) { mode("poll", "offline"); }
      }
      setTimeout(tick, 1000);
    };
    tick();
  };
  if (!node.dataset.stream || !window.EventSource) return poll();
  let failures = 0;
  const connect = () => {
    es = new EventSource(node.dataset.stream);
    for (const name of events.concat(["gone"])) {
      es.addEventListener(name, (m) => {
        failures = 0;
        mode("sse", "live");
        apply(name, JSON.parse(m.data), stop);
      });
    }
    es.addEventListener("unavailable", () => mode("sse", "storage unavailable"));
    es.addEventListener("error", () => {
      if (stopped) return;
      failures++;
      if (es.readyState === EventSource.CLOSED || failures >= 3) {
        // Streams do not get through here: poll from now on.
        es.close();
        es = null;
        streaming = false;
        poll();
      } else {
        mode("sse", "reconnecting");
      }
    });
  };
  let streaming = true;
  document.addEventListener("visibilitychange", () => {
    if (stopped || !streaming) return;
    if (document.hidden) { if (es) { es.close(); es = null; } }
    else if (!es) connect();
  });
  connect();
}

function card(job) {
  const a = el("a", { class: "job", href: "/jobs/" + job.id, "data-id": job.id, "data-state": job.state });
  if (job.thumbnail) a.append(el("img", { class: "thumb", src: job.thumbnail.url, alt: job.file_name, loading: "lazy" }));
  else a.append(el("div", { class: "placeholder" }, job.state));
  a.append(el("span", { class: "name" }, job.file_name));
  a.append(el("span", { class: "state state-" + job.state }, job.state));
  if (job.reason) a.append(el("span", { class: "reason" }, job.reason));
  return a;
}

// Cards stay in id order, which is newest first. A card is replaced only when its state
// changes, so images are not fetched again.
function place(grid, job) {
  const cards = Array.from(grid.querySelectorAll(".job"));
  let node = cards.find((n) => n.dataset.id === job.id);
  if (node) {
    if (node.dataset.state !== job.state) {
      const fresh = card(job);
      node.replaceWith(fresh);
    }
    return;
  }
  node = card(job);
  const after = cards.find((n) => n.dataset.id > job.id);
  if (after) after.before(node); else grid.append(node);
  const empty = document.getElementById("empty");
  if (empty) empty.remove();
}

(function gallery() {
  const grid = document.getElementById("gallery");
  if (!grid) return;
  const more = document.getElementById("more");
  if (more) {
    more.addEventListener("click", async (e) => {
      e.preventDefault();
      more.setAttribute("aria-busy", "true");
      try {
        const r = await fetch("/api/jobs?page=" + encodeURIComponent(more.dataset.page),
          { headers: { Accept: "application/json" }, cache: "no-store" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        const o = await r.json();
        for (const job of o.jobs) place(grid, job);
        if (o.next) {
          more.dataset.page = o.next;
          more.href = "/gallery?page=" + encodeURIComponent(o.next);
        } else {
          more.parentElement.remove();
        }
      } catch (_) {
        // The link still works as a plain page load.
        window.location.href = more.href;
      } finally {
        more.removeAttribute("aria-busy");
      }
    });
  }
  if (!grid.dataset.live) return;
  live(grid, ["overview"], (_event, o) => {
    // A shared stream may first hand over a listing older than this page's own.
    if (o.listed_at < Number(grid.dataset.listedAt || 0)) return;
    grid.dataset.listedAt = o.listed_at;
    document.getElementById("queue-depth").textContent = o.queue_depth ?? "?";
    document.getElementById("poison-count").textContent = o.poison_count ?? "?";
    // The listing covers every id up to its last one (all of them on the last page):
    // a card in that range it does not hold was deleted. Older cards, loaded with
    // "Older uploads", are beyond it and stay.
    const listed = new Set(o.jobs.map((j) => j.id));
    const last = o.jobs.length ? o.jobs[o.jobs.length - 1].id : null;
    for (const n of Array.from(grid.querySelectorAll(".job"))) {
      const covered = !o.next || (last !== null && n.dataset.id <= last);
      if (covered && !listed.has(n.dataset.id)) n.remove();
    }
    for (const job of o.jobs) place(grid, job);
  });
})();

(function jobPage() {
  const box = document.getElementById("job");
  if (!box) return;
  const del = document.getElementById("delete-form");
  if (del) {
    del.addEventListener("submit", (e) => {
      if (!window.confirm("Delete this upload and the images made from it?")) e.preventDefault();
    });
  }
  live(box, ["job"], (event, job, stop) => {
    if (event === "gone") {
      stop();
      box.dataset.state = "deleted";
      const state = document.getElementById("job-state");
      state.textContent = "deleted";
      state.className = "state state-failed";
      return;
    }
    document.getElementById("job-attempts").textContent = job.attempts;
    if (box.dataset.state === job.state) return;
    box.dataset.state = job.state;
    const state = document.getElementById("job-state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    document.getElementById("job-reason").textContent = job.reason || "";
    const retry = document.getElementById("retry-form");
    if (retry) retry.hidden = job.state !== "failed";
    for (const kind of ["thumbnail", "web"]) {
      if (job[kind]) {
        document.getElementById("img-" + kind).src = job[kind].url;
        document.getElementById("dims-" + kind).textContent = job[kind].width + "×" + job[kind].height;
      }
    }
  });
})();
