// Real-browser test of the app's photo features: headless Chromium (Debian's package)
// driven by playwright-core.
//
// 1. Without JavaScript, the form still uploads and shows the success page.
// 2. With it, a large file's progress bar moves (the upload throttled by the browser's own
//    network emulation), each file gets its own row, and the page does not navigate.
// 3. The gallery pages ("Older uploads") with JavaScript in place, without it by links;
//    its live updates arrive by Server-Sent Events.
// 4. A job that failed is retried with its button once the test's driver has fixed the
//    cause: this script prints {"fix": id} and waits for a line on stdin.
// 5. Every upload is deleted with its button.
//
// usage: node photos.cjs <app base URL> <screenshot prefix> <no-js.jpg> <large.png> <broken.jpg> <small.jpg>
// Prints {"fix": id} lines while running and one JSON report line at the end.
"use strict";
const { launch } = require("./launch.cjs");
const readline = require("readline");

const [base, shots, noJsFile, largeFile, brokenFile, smallFile] = process.argv.slice(2);
if (!smallFile) {
  console.error("usage: node photos.cjs <base> <screenshot prefix> <no-js.jpg> <large.png> <broken.jpg> <small.jpg>");
  process.exit(2);
}
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const report = {};
const check = (ok, what) => { if (!ok) throw new Error(what); };

async function untilSettled(page, id) {
  await page.goto(base + "/jobs/" + id, { waitUntil: "load" });
  await page.waitForFunction(() => {
    const s = document.getElementById("job").dataset.state;
    return s === "done" || s === "failed";
  }, null, { timeout: 90_000 });
  return page.locator("#job").getAttribute("data-state");
}

(async () => {
  const browser = await launch();
  const errors = [];
  const noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1100, height: 800 } });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push("page error: " + e.message));
  page.on("dialog", (d) => { report.dialog = d.message(); d.accept(); });
  try {
    // 1. The plain form.
    const plain = await noJs.newPage();
    await plain.goto(base + "/", { waitUntil: "load" });
    await plain.locator("#file-input").setInputFiles(noJsFile);
    await Promise.all([plain.waitForURL(base + "/upload"), plain.locator("#upload-button").click()]);
    check((await plain.locator("h1").textContent()).trim() === "Upload complete", "no-JS upload: no success page");
    check(await plain.locator("a.job-link").count() === 1, "no-JS upload: no job link");

    // 2. Progress, throttled to 2 MiB/s so a few MiB take seconds.
    await page.goto(base + "/", { waitUntil: "load" });
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024,
    });
    await page.evaluate(() => {
      window.__samples = [];
      new MutationObserver((ms) => {
        for (const m of ms) {
          const bar = m.target;
          if (bar.tagName !== "PROGRESS") continue;
          const li = bar.closest("li");
          window.__samples.push({
            file: li.querySelector(".name, .job-link").textContent,
            value: bar.value, max: bar.max, text: li.querySelector(".bytes").textContent,
          });
        }
      }).observe(document.body, { attributes: true, subtree: true, attributeFilter: ["value", "max"] });
    });
    await page.locator("#file-input").setInputFiles([largeFile, brokenFile, smallFile]);
    await page.locator("#upload-button").click();
    const rows = page.locator("#progress li.upload-item");
    await page.waitForFunction(() => {
      const bar = document.querySelector("#progress li.upload-item progress");
      return bar && bar.value > 0.2 * bar.max && bar.value < 0.8 * bar.max;
    }, null, { timeout: 60_000 });
    await page.screenshot({ path: shots + "-progress.png", fullPage: true });
    await page.locator("#progress-done").waitFor({ state: "visible", timeout: 120_000 });
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
    });
    check(page.url() === base + "/", "the upload navigated away: " + page.url());
    check(await rows.count() === 3, "one row per file");
    const states = await rows.evaluateAll((ls) => ls.map((l) => l.dataset.state));
    check(states.every((s) => s === "uploaded"), "rows: " + states);
    const largeName = largeFile.split("/").pop();
    const samples = (await page.evaluate(() => window.__samples)).filter((s) => s.file === largeName);
    const fractions = samples.filter((s) => s.max > 1).map((s) => s.value / s.max);
    const between = [...new Set(fractions.filter((f) => f > 0 && f < 1).map((f) => f.toFixed(3)))];
    check(between.length >= 3, "the large file's bar did not move: " + JSON.stringify(fractions));
    check(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]), "progress went back: " + fractions);
    check(fractions[fractions.length - 1] === 1, "progress did not end full");
    const mid = samples.find((s) => / MiB of [\d.]+ MiB · \d+%$/.test(s.text));
    check(mid, "no 'x MiB of y MiB · p%' text: " + JSON.stringify(samples.map((s) => s.text)));
    report.progress = { steps: between.length, sample: mid.text };
    const links = await page.locator("#progress a.job-link").evaluateAll((as) =>
      as.map((a) => ({ name: a.textContent, id: a.getAttribute("href").split("/").pop() })));
    const idOf = (file) => links.find((l) => l.name === file.split("/").pop()).id;
    const ids = { large: idOf(largeFile), broken: idOf(brokenFile), small: idOf(smallFile) };
    ids.plain = (await plain.locator("a.job-link").getAttribute("href")).split("/").pop();
    report.ids = ids;

    // 3. Paging, two to a page: with JavaScript "Older uploads" appends, without it links.
    await page.goto(base + "/gallery", { waitUntil: "load" });
    await page.waitForFunction(() => document.getElementById("live").dataset.mode === "sse", null, { timeout: 10_000 });
    check(await page.locator("#gallery .job").count() === 2, "first page holds two");
    for (let i = 0; i < 5 && await page.locator("#more").count(); i++) {
      const before = await page.locator("#gallery .job").count();
      await page.locator("#more").click();
      await page.waitForFunction((n) => document.querySelectorAll("#gallery .job").length > n
        || !document.getElementById("more"), before, { timeout: 10_000 });
    }
    const shown = await page.locator("#gallery .job").evaluateAll((as) => as.map((a) => a.dataset.id));
    const all = Object.values(ids).sort();
    check(JSON.stringify(shown) === JSON.stringify(all), "gallery with more: " + shown + " want " + all);
    check(page.url() === base + "/gallery", "more navigated");
    await page.screenshot({ path: shots + "-gallery.png", fullPage: true });
    const linked = [];
    let url = base + "/gallery";
    for (let i = 0; i < 5 && url; i++) {
      await plain.goto(url, { waitUntil: "load" });
      linked.push(...await plain.locator("#gallery .job").evaluateAll((as) => as.map((a) => a.dataset.id)));
      const more = plain.locator("#more");
      url = await more.count() ? new URL(await more.getAttribute("href"), base).href : null;
    }
    check(JSON.stringify(linked) === JSON.stringify(all), "gallery by links: " + linked);
    report.paging = { js: shown.length, links: linked.length };

    // 4. Retry: the broken upload fails; the driver fixes its original; the button retries.
    check(await untilSettled(page, ids.broken) === "failed", "the broken upload did not fail");
    await page.waitForFunction(() => document.getElementById("live").dataset.mode === "sse", null, { timeout: 10_000 });
    check(await page.locator("#retry-form").isVisible(), "no retry button on a failed job");
    report.reason = await page.locator("#job-reason").textContent();
    const poisonBefore = (await (await page.request.get(base + "/api/jobs")).json()).poison_count;
    await page.screenshot({ path: shots + "-failed.png", fullPage: true });
    console.log(JSON.stringify({ fix: ids.broken }));
    const answer = await lines.next();
    check(!answer.done && answer.value.trim() === "fixed", "the driver did not fix it");
    await Promise.all([
      page.waitForURL(base + "/jobs/" + ids.broken),
      page.locator("#retry-button").click(),
    ]);
    await page.waitForFunction(() => document.getElementById("job").dataset.state === "done", null, { timeout: 90_000 });
    await page.waitForFunction(() => {
      const i = document.getElementById("img-thumbnail");
      return i && i.complete && i.naturalWidth > 0;
    }, null, { timeout: 30_000 });
    const thumb = await page.locator("#img-thumbnail").evaluate((i) => [i.naturalWidth, i.naturalHeight]);
    check(await page.locator("#retry-form").isHidden(), "retry still offered on a done job");
    const poisonAfter = (await (await page.request.get(base + "/api/jobs")).json()).poison_count;
    await page.screenshot({ path: shots + "-retried.png", fullPage: true });
    report.retry = { thumbnail: thumb, poison_before: poisonBefore, poison_after: poisonAfter };

    // 5. Delete every upload with its button (each settled first, so no worker is
    //    still writing its outputs).
    for (const id of all) {
      await untilSettled(page, id);
      await Promise.all([page.waitForURL(base + "/gallery"), page.locator("#delete-button").click()]);
      check(await page.locator(`.job[data-id="${id}"]`).count() === 0, "deleted card still shown: " + id);
      const r = await page.request.get(base + "/api/jobs/" + id);
      check(r.status() === 404, "deleted job still answers " + r.status());
    }
    await page.waitForFunction(() => document.querySelectorAll("#gallery .job").length === 0, null, { timeout: 10_000 });
    await page.screenshot({ path: shots + "-deleted.png", fullPage: true });
    report.deleted = all.length;
    check(errors.length === 0, errors.join("; "));
    console.log(JSON.stringify(report));
  } catch (e) {
    await page.screenshot({ path: shots + "-error.png", fullPage: true }).catch(() => {});
    console.error("browser test failed: " + (e && e.stack || e));
    process.exitCode = 1;
  } finally {
    await browser.close();
    process.exit();
  }
})();
