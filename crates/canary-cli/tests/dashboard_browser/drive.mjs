// Drives Debian's chromium, headless, over the DevTools protocol on a pipe
// (--remote-debugging-pipe: commands on fd 3, answers on fd 4), with node's standard
// library only. Used by crates/canary-cli/tests/dashboard.rs.
//
//   node drive.mjs <chromium> <url> <screenshot.png> [<script> [<wait-until>]]
//
// Opens <url> at 1280 px wide, runs <script> in the page (a JavaScript expression,
// for example a click), waits until <wait-until> (an expression) is true (at most
// 20 s), waits for the page to settle, writes a full-page screenshot, and prints the
// page's DOM (document.documentElement.outerHTML) on standard output. Every request
// the page makes is listed on standard error as `request <url>`. Exit 1 with the
// reason on standard error when something fails.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [chromium, url, shot, script, waitUntil] = process.argv.slice(2);
if (!chromium || !url || !shot) {
  console.error("usage: node drive.mjs <chromium> <url> <screenshot.png> [<script> [<wait-until>]]");
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), "canary-chromium-"));
const browser = spawn(chromium, [
  "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
  "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
  "--disable-extensions", "--disable-background-networking", "--disable-sync",
  "--user-data-dir=" + profile, "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
let stderr = "";
browser.stderr.on("data", (d) => { stderr += d; });
const toBrowser = browser.stdio[3];
const fromBrowser = browser.stdio[4];

let nextId = 1;
const pending = new Map();
const listeners = [];
let buffer = "";
fromBrowser.on("data", (chunk) => {
  buffer += chunk.toString("utf8");
  let end;
  while ((end = buffer.indexOf("\0")) >= 0) {
    const msg = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject, method } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) { reject(new Error(method + ": " + JSON.stringify(msg.error))); } else { resolve(msg.result); }
    } else if (msg.method) {
      for (const l of listeners) { l(msg); }
    }
  }
});

function send(method, params = {}, sessionId = undefined) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) { msg.sessionId = sessionId; }
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, method });
    toBrowser.write(JSON.stringify(msg) + "\0");
  });
}

function once(method, sessionId, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no " + method + " within " + ms + " ms")), ms);
    listeners.push((m) => {
      if (m.method === method && m.sessionId === sessionId) { clearTimeout(timer); resolve(m.params); }
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function evaluate(session, expression) {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true }, session);
  if (r.exceptionDetails) {
    throw new Error("the page's script failed: " + JSON.stringify(r.exceptionDetails.exception || r.exceptionDetails));
  }
  return r.result.value;
}

async function main() {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  await send("Page.enable", {}, sessionId);
  await send("Runtime.enable", {}, sessionId);
  await send("Network.enable", {}, sessionId);
  listeners.push((m) => {
    if (m.method === "Network.requestWillBeSent" && m.sessionId === sessionId) {
      console.error("request " + m.params.request.url);
    }
    if (m.method === "Runtime.exceptionThrown" && m.sessionId === sessionId) {
      console.error("page error " + JSON.stringify(m.params.exceptionDetails));
    }
  });
  await send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
  const loaded = once("Page.loadEventFired", sessionId, 20000);
  const nav = await send("Page.navigate", { url }, sessionId);
  if (nav.errorText) { throw new Error("cannot open " + url + ": " + nav.errorText); }
  await loaded;
  if (script) {
    await evaluate(sessionId, script);
  }
  if (waitUntil) {
    const deadline = Date.now() + 20000;
    while (!(await evaluate(sessionId, waitUntil))) {
      if (Date.now() > deadline) { throw new Error("the page never satisfied: " + waitUntil); }
      await sleep(200);
    }
  }
  await sleep(300);
  const png = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, sessionId);
  writeFileSync(shot, Buffer.from(png.data, "base64"));
  const html = await evaluate(sessionId, "document.documentElement.outerHTML");
  process.stdout.write(html);
}

let code = 0;
try {
  await Promise.race([main(), new Promise((_, reject) => setTimeout(() => reject(new Error("gave up after 60 s")), 60000))]);
} catch (e) {
  console.error("drive.mjs: " + e.message);
  if (stderr) { console.error("chromium said:\n" + stderr.slice(-2000)); }
  code = 1;
}
const exited = new Promise((resolve) => {
  if (browser.exitCode !== null || browser.signalCode !== null) { resolve(); } else { browser.once("exit", resolve); }
});
try { await Promise.race([send("Browser.close"), sleep(2000)]); } catch (e) { /* already gone */ }
await Promise.race([exited, sleep(5000)]);
browser.kill();
await Promise.race([exited, sleep(2000)]);
try {
  rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
} catch (e) {
  console.error("drive.mjs: could not remove " + profile + ": " + e.message);
}
process.exit(code);
