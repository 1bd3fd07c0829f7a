// lib.js: what the inbox's browser tests share: the gateway on free ports, HTTP helpers, checks.
// Exit 77 (ctest SKIP) when chromium or playwright-core is missing.
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const net = require("net");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PARLEY = process.env.PARLEY_BIN || path.resolve(__dirname, "../../build/parley");
const OUT = process.env.PARLEY_BUILD_DIR || path.resolve(__dirname, "../../build");

function loadPlaywright() {
  let playwright;
  try {
    playwright = require("playwright-core");
  } catch (e) {
    console.log("SKIP: playwright-core is not installed: run `npm ci` in tests/browser (scripts/deps.sh --test does)");
    process.exit(77);
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIP: no chromium at ${CHROMIUM} (apt-get install chromium; scripts/deps.sh --test does)`);
    process.exit(77);
  }
  return playwright;
}

// A free port below the ephemeral range (see tests/e2e/ports.py: a bind(0) port may be taken by
// any test's outgoing connection before the gateway binds it).
function freePort(tries = 200) {
  return new Promise((resolve, reject) => {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const s = net.createServer();
    s.once("error", () => (tries > 1 ? freePort(tries - 1).then(resolve, reject) : reject(new Error("no free port"))));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(port)));
  });
}

// A request to 127.0.0.1:port: {status, headers, body (parsed JSON when it is)}.
function request(port, method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? "" : Buffer.isBuffer(body) || typeof body === "string" ? body : JSON.stringify(body);
    const h = Object.assign({ "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) }, headers || {});
    const r = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers: h }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        let parsed = text;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    r.on("error", reject);
    r.end(data);
  });
}

// The gateway with a config body; stopped by stop().
async function startGateway(configFor) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-inbox-"));
  const port = await freePort();
  const cfg = path.join(dir, "parley.yaml");
  fs.writeFileSync(cfg, configFor(port));
  const log = fs.openSync(path.join(dir, "gateway.log"), "a");
  async function run() {
    const proc = spawn(PARLEY, ["run", "-c", cfg], { cwd: dir, stdio: ["ignore", log, log] });
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error("the gateway exited early:\n" + fs.readFileSync(path.join(dir, "gateway.log"), "utf8"));
      try {
        if ((await request(port, "GET", "/healthz")).status === 200) break;
      } catch (e) { /* not listening yet */ }
      if (i > 300) throw new Error("the gateway did not become healthy");
      await new Promise((r) => setTimeout(r, 20));
    }
    return proc;
  }
  let proc = await run();
  const stopped = () => new Promise((r) => (proc.exitCode !== null ? r() : proc.on("exit", r)));
  return {
    dir, port, cfg,
    // Stop and start again on the same store and port (a deploy, a crash and its restart).
    async restart() {
      proc.kill("SIGTERM");
      await stopped();
      proc = await run();
    },
    api(op, obj) {
      return JSON.parse(execFileSync(PARLEY, ["api", "-c", cfg, op, JSON.stringify(obj || {})], { cwd: dir, encoding: "utf8" }));
    },
    logTail() {
      return fs.readFileSync(path.join(dir, "gateway.log"), "utf8").split("\n").slice(-30).join("\n");
    },
    async stop() {
      proc.kill("SIGTERM");
      await stopped();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const failures = [];
function check(cond, what) {
  if (!cond) {
    failures.push(what);
    console.error("FAIL:", what);
  }
  return cond;
}

function finish() {
  if (failures.length) {
    console.error(`${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log("all checks passed");
}

// Wait until fn() is truthy (polling); its value, or null after ms.
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

// A Twilio webhook signed as Twilio signs it (the public URL and the sorted form fields, HMAC-SHA1).
function postTwilio(port, publicUrl, urlPath, token, form) {
  const params = new URLSearchParams(form);
  const data = publicUrl + urlPath + [...params.keys()].sort().map((k) => k + params.get(k)).join("");
  const sig = require("crypto").createHmac("sha1", token).update(data).digest("base64");
  return request(port, "POST", urlPath, form, { "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig });
}

// A generic webhook channel's message, signed with its secret (X-Parley-Signature).
function postSigned(port, urlPath, secret, obj) {
  const body = JSON.stringify(obj);
  const sig = "sha256=" + require("crypto").createHmac("sha256", secret).update(body).digest("hex");
  return request(port, "POST", urlPath, body, { "X-Parley-Signature": sig });
}

function screenshotsDir() {
  const d = path.join(OUT, "screenshots");
  fs.mkdirSync(d, { recursive: true });
  return d;
}

module.exports = { CHROMIUM, PARLEY, OUT, loadPlaywright, freePort, request, startGateway, check, failures, finish, until,
                   screenshotsDir, postTwilio, postSigned };
