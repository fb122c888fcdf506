// Real-browser test of the emulator's web console: headless Chromium (Debian's package)
// driven by playwright-core. Signs in with the account key, browses a seeded container and
// its folder, peeks a queue (its depth must not change), adds a fault rule and sees its
// error shown and its request in the live log, moves between tabs with the keyboard, and
// checks a phone-width layout. Prints a JSON report; saves screenshots.
//
// usage: node console.cjs <blob endpoint base> <account key> <screenshot folder>
"use strict";
const { launch } = require("./launch.cjs");
const path = require("path");

const [base, key, shots] = process.argv.slice(2);
if (!base || !key || !shots) {
  console.error("usage: node console.cjs <blob endpoint base> <account key> <screenshot folder>");
  process.exit(2);
}

(async () => {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const seen = [];
  page.on("pageerror", (e) => seen.push("page error: " + e.message));
  page.on("dialog", (d) => d.accept());
  const shot = (name) => page.screenshot({ path: path.join(shots, `console-${name}.png`), fullPage: true });
  const report = {};
  try {
    await page.goto(base + "/_emulator/console", { waitUntil: "load" });
    await page.getByLabel("Account key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#app").waitFor({ state: "visible", timeout: 15_000 });

    // A seeded container, its blobs and a folder.
    await page.locator('#container-list button[data-container="photos"]').click();
    await page.locator('#blob-list tr[data-blob="a.txt"]').waitFor();
    report.top = await page.locator("#blob-list tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.blob || r.querySelector("button")?.dataset.prefix));
    await page.locator('#blob-list button[data-prefix="dir/"]').click();
    await page.locator('#blob-list tr[data-blob="dir/b.json"]').waitFor();
    await page.getByRole("button", { name: "Properties of b.json" }).click();
    await page.locator("#blob-details").waitFor({ state: "visible" });
    report.props = await page.locator("#blob-props").innerText();
    await shot("containers");

    // Peek a queue: messages shown, decoded, and the depth unchanged.
    await page.getByRole("tab", { name: "Queues" }).click();
    const depthCell = page.locator('#queue-list button[data-queue="jobs"]').locator("xpath=ancestor::tr").locator(".depth");
    await depthCell.waitFor();
    report.depthBefore = Number(await depthCell.innerText());
    await page.getByRole("button", { name: "Peek messages of jobs" }).click();
    await page.locator("#messages li.message").nth(1).waitFor();
    report.messages = await page.locator("#messages li.message pre.raw").allInnerTexts();
    report.decoded = await page.locator("#messages .decoded pre").allInnerTexts();
    await page.getByRole("tab", { name: "Containers" }).click();
    await page.getByRole("tab", { name: "Queues" }).click();
    await page.getByRole("button", { name: "Peek messages of jobs" }).waitFor();
    report.depthAfter = Number(await depthCell.innerText());
    await shot("queues");

    // A fault rule: its error is shown as the Azure code, its request is in the live log.
    await page.getByRole("tab", { name: "Faults" }).click();
    await page.getByLabel("Operation").fill("ListBlobs");
    await page.getByLabel("Status").fill("503");
    await page.getByLabel("Error code").fill("ServerBusy");
    await page.getByLabel("Times (empty: until removed)").fill("1");
    await page.getByRole("button", { name: "Add rule" }).click();
    await page.locator("#fault-list tr[data-rule]").first().waitFor();
    await page.getByRole("tab", { name: "Containers" }).click();
    await page.locator('#container-list button[data-container="photos"]').click();
    await page.locator("#error").waitFor({ state: "visible" });
    report.error = await page.locator("#error").innerText();
    await page.getByRole("tab", { name: "Activity" }).click();
    const row = page.locator('#request-log tr[data-operation="ListBlobs"][data-status="503"]');
    await row.first().waitFor({ timeout: 15_000 });
    report.logRow = await row.first().innerText();
    await page.waitForFunction(() => document.querySelector("#chart-requests polyline"), null, { timeout: 10_000 });
    await shot("activity");

    // Keyboard: arrows move between tabs.
    await page.getByRole("tab", { name: "Activity" }).focus();
    await page.keyboard.press("ArrowRight");
    report.afterArrow = await page.evaluate(() => document.activeElement.id);
    report.faultsShown = await page.locator("#panel-faults").isVisible();

    // A phone's width: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("tab", { name: "Containers" }).click();
    await page.locator('#container-list button[data-container="photos"]').click();
    await page.locator('#blob-list tr[data-blob="a.txt"]').waitFor();
    report.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await shot("phone");
    if (seen.length) throw new Error(seen.join("; "));
    console.log(JSON.stringify(report));
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error("console test failed: " + (e && e.stack || e) + "\nreport so far: " + JSON.stringify(report));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
