// Real-browser test: headless Chromium (Debian's package) driven by playwright-core.
// Opens the app, uploads a file through the form (its progress shown in the page), opens
// the gallery and waits there, without reloading, for the processed thumbnail to appear:
// pushed by Server-Sent Events, and in a second tab without EventSource, by polling.
//
// usage: node upload.cjs <app base URL> <image file> <screenshot.png>
"use strict";
const { launch } = require("./launch.cjs");

const [base, file, screenshot] = process.argv.slice(2);
if (!base || !file || !screenshot) {
  console.error("usage: node upload.cjs <app base URL> <image file> <screenshot.png>");
  process.exit(2);
}

(async () => {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const seen = [];
  page.on("pageerror", (e) => seen.push("page error: " + e.message));
  try {
    await page.goto(base + "/", { waitUntil: "load" });
    await page.locator("#file-input").setInputFiles(file);
    await page.locator("#upload-button").click();
    await page.locator("#progress-done").waitFor({ state: "visible", timeout: 60_000 });
    const jobHref = await page.locator("#progress a.job-link").first().getAttribute("href");
    if (!/^\/jobs\/[0-9a-f]{20}$/.test(jobHref)) throw new Error("no link to the job: " + jobHref);
    const id = jobHref.split("/").pop();

    // A second gallery where EventSource does not exist: it must fall back to polling.
    const polled = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    polled.on("pageerror", (e) => seen.push("page error: " + e.message));
    await polled.addInitScript(() => { delete window.EventSource; });
    await polled.goto(base + "/gallery", { waitUntil: "load" });

    await Promise.all([page.waitForURL(base + "/gallery"), page.getByText("Open the gallery").click()]);
    // Marks these documents: if a page reloaded, the marker would be gone.
    for (const p of [page, polled]) await p.evaluate(() => { window.__noReload = true; });
    const card = page.locator(`.job[data-id="${id}"]`);
    await card.waitFor({ timeout: 10_000 });
    const initial = await card.getAttribute("data-state");
    if (initial === "done") throw new Error("job was already done when the gallery opened; cannot see a live update");
    const modes = {};
    for (const [name, p] of [["sse", page], ["poll", polled]]) {
      const thumb = p.locator(`.job[data-id="${id}"][data-state="done"] img.thumb`);
      await thumb.waitFor({ state: "visible", timeout: 90_000 });
      await p.waitForFunction(
        (sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; },
        `.job[data-id="${id}"] img.thumb`, { timeout: 30_000 });
      if (!await p.evaluate(() => window.__noReload === true)) throw new Error("the gallery reloaded instead of updating live");
      modes[name] = await p.locator("#live").getAttribute("data-mode");
    }
    if (modes.sse !== "sse" || modes.poll !== "poll") throw new Error("live modes: " + JSON.stringify(modes));
    const thumb = page.locator(`.job[data-id="${id}"][data-state="done"] img.thumb`);
    const dims = await thumb.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
    const depth = await page.locator("#queue-depth").textContent();
    const poison = await page.locator("#poison-count").textContent();
    await page.screenshot({ path: screenshot, fullPage: true });
    if (seen.length) throw new Error(seen.join("; "));
    console.log(JSON.stringify({ id, initial, thumbnail: dims, modes, queue_depth: depth, poison_count: poison }));
  } catch (e) {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    console.error("browser test failed: " + (e && e.stack || e));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
