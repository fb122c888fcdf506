// The server under test for the JavaScript SDK suite, started as the Python suite starts
// it: CONFORMANCE_TARGET=emulator (EMULATOR_BIN, default target/debug/emulator) or
// azurite (AZURITE_BLOB_BIN / AZURITE_BIN from tools/azurite), both in memory on free
// loopback ports, stopped by pid when the suite ends.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..", "..");
// The SDKs live in tools/jssdk (pinned there, installed by scripts/setup.sh).
export const require = createRequire(path.join(repo, "tools", "jssdk", "package.json"));

export const ACCOUNT = "devstoreaccount1";
export const KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
export const targetName = (process.env.CONFORMANCE_TARGET || "emulator").toLowerCase();
export const onAzurite = targetName === "azurite";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function waitForLine(child, pattern, ms) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no "${pattern}" within ${ms} ms:\n${seen}`)), ms);
    const on = (chunk) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on("data", on);
    child.stderr.on("data", (c) => (seen += c.toString()));
    child.on("exit", (code) => reject(new Error(`exited with ${code}:\n${seen}`)));
  });
}

async function startAzurite(kind, bin) {
  const port = await freePort();
  const child = spawn(
    bin,
    [`--${kind}Host`, "127.0.0.1", `--${kind}Port`, String(port), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await waitForLine(child, /successfully listen/, 60000);
  return { child, url: `http://127.0.0.1:${port}/${ACCOUNT}` };
}

/** Starts the target once; returns its endpoints and a stop function. `emulatorArgs`
 * are extra flags for our emulator (Azurite has no equivalents). */
export async function start(emulatorArgs = []) {
  if (onAzurite) {
    const bin = (name, env) => process.env[env] || path.join(repo, "tools", "azurite", "node_modules", ".bin", name);
    const blob = await startAzurite("blob", bin("azurite-blob", "AZURITE_BLOB_BIN"));
    const queue = await startAzurite("queue", bin("azurite-queue", "AZURITE_BIN"));
    return target(blob.url, queue.url, [blob.child, queue.child]);
  }
  const bin = process.env.EMULATOR_BIN || path.join(repo, "target", "debug", "emulator");
  const child = spawn(bin, ["--blobPort", "0", "--queuePort", "0", "--inMemoryPersistence", ...emulatorArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const blobLine = waitForLine(child, /Blob service listening at (http:\/\/\S+)/, 30000);
  const queueLine = waitForLine(child, /Queue service listening at (http:\/\/\S+)/, 30000);
  const [b, q] = await Promise.all([blobLine, queueLine]);
  return target(`${b[1]}/${ACCOUNT}`, `${q[1]}/${ACCOUNT}`, [child]);
}

function target(blobEndpoint, queueEndpoint, children) {
  return {
    blobEndpoint,
    queueEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};`,
    stop() {
      for (const c of children) c.kill("SIGTERM");
    },
  };
}

let n = 0;
export function unique(prefix = "js") {
  n += 1;
  return `${prefix}${process.pid}x${Date.now().toString(36)}${n}`;
}
