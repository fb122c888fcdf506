// Real-browser test: headless Chromium (Debian's package) driven by playwright-core.
// Opens the app, uploads a file through the form, follows the success page to the gallery
// and waits there, without reloading, for the processed thumbnail to appear.
//
// usage: node upload.cjs <app base URL> <image file> <screenshot.png>
"use strict";
const { chromium } = require("playwright-core");

const [base, file, screenshot] = process.argv.slice(2);
if (!base || !file || !screenshot) {
  console.error("usage: node upload.cjs <app base URL> <image file> <screenshot.png>");
  process.exit(2);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const seen = [];
  page.on("pageerror", (e) => seen.push("page error: " + e.message));
  try {
    await page.goto(base + "/", { waitUntil: "load" });
    await page.locator("#file-input").setInputFiles(file);
    await Promise.all([
      page.waitForURL(base + "/upload"),
      page.locator("#upload-button").click(),
    ]);
    const heading = await page.locator("h1").textContent();
    if (heading.trim() !== "Upload complete") throw new Error("success page missing: " + heading);
    const jobHref = await page.locator("a.job-link").first().getAttribute("href");
    if (!/^\/jobs\/[0-9a-f]{20}$/.test(jobHref)) throw new Error("no link to the job: " + jobHref);
    const id = jobHref.split("/").pop();

    await Promise.all([page.waitForURL(base + "/gallery"), page.getByText("Open the gallery").click()]);
    // Marks this document: if the page reloaded, the marker would be gone.
    await page.evaluate(() => { window.__noReload = true; });
    const card = page.locator(`.job[data-id="${id}"]`);
    const initial = await card.getAttribute("data-state");
    if (initial === "done") throw new Error("job was already done when the gallery opened; cannot see a live update");
    const thumb = page.locator(`.job[data-id="${id}"][data-state="done"] img.thumb`);
    await thumb.waitFor({ state: "visible", timeout: 90_000 });
    await page.waitForFunction(
      (sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; },
      `.job[data-id="${id}"] img.thumb`, { timeout: 30_000 });
    const dims = await thumb.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
    const noReload = await page.evaluate(() => window.__noReload === true);
    if (!noReload) throw new Error("the gallery reloaded instead of updating live");
    const depth = await page.locator("#queue-depth").textContent();
    const poison = await page.locator("#poison-count").textContent();
    await page.screenshot({ path: screenshot, fullPage: true });
    if (seen.length) throw new Error(seen.join("; "));
    console.log(JSON.stringify({ id, initial, thumbnail: dims, queue_depth: depth, poison_count: poison }));
  } catch (e) {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    console.error("browser test failed: " + (e && e.stack || e));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
