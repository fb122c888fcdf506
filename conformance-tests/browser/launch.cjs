// Headless Chromium as every browser test starts it: Debian's package (or $CHROMIUM),
// with nothing in the background that would reach the network.
"use strict";
const { chromium } = require("playwright-core");

module.exports.launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
