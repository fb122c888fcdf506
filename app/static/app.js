// Progressive enhancement: drag and drop onto the form, and live updates of the gallery and
// job pages by polling the JSON API (pages work without JavaScript, just not live).
"use strict";

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

function el(tag, attrs, text) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

function card(job) {
  const a = el("a", { class: "job", href: "/jobs/" + job.id, "data-id": job.id, "data-state": job.state });
  if (job.thumbnail) a.append(el("img", { class: "thumb", src: job.thumbnail.url, alt: job.file_name }));
  else a.append(el("div", { class: "placeholder" }, job.state));
  a.append(el("span", { class: "name" }, job.file_name));
  a.append(el("span", { class: "state state-" + job.state }, job.state));
  if (job.reason) a.append(el("span", { class: "reason" }, job.reason));
  return a;
}

function poll(url, apply) {
  const live = document.getElementById("live");
  const tick = async () => {
    try {
      const r = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (r.ok) { apply(await r.json()); if (live) live.textContent = "live"; }
      else if (live) live.textContent = "storage unavailable";
    } catch (_) { if (live) live.textContent = "offline"; }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

(function gallery() {
  const grid = document.getElementById("gallery");
  if (!grid) return;
  poll(grid.dataset.live, (o) => {
    document.getElementById("queue-depth").textContent = o.queue_depth ?? "?";
    document.getElementById("poison-count").textContent = o.poison_count ?? "?";
    const existing = new Map(Array.from(grid.querySelectorAll(".job")).map((n) => [n.dataset.id, n]));
    const empty = document.getElementById("empty");
    if (empty && o.jobs.length) empty.remove();
    let prev = null;
    for (const job of o.jobs) {
      let node = existing.get(job.id);
      // Replace a card only when its state changes, so images are not reloaded.
      if (!node || node.dataset.state !== job.state) {
        const fresh = card(job);
        if (node) node.replaceWith(fresh); 
        node = fresh;
      }
      if (prev) prev.after(node); else grid.prepend(node);
      prev = node;
      existing.delete(job.id);
    }
    existing.forEach((n) => n.remove());
  });
})();

(function jobPage() {
  const box = document.getElementById("job");
  if (!box) return;
  poll(box.dataset.live, (job) => {
    if (box.dataset.state === job.state) return;
    box.dataset.state = job.state;
    const state = document.getElementById("job-state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    document.getElementById("job-reason").textContent = job.reason || "";
    document.getElementById("job-attempts").textContent = job.attempts;
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
