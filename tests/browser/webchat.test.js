// webchat.test.js: the web chat widget in a real browser (Debian's chromium through playwright-core).
//
// The gateway runs on 127.0.0.1 with a webchat channel `site`; a host page on ANOTHER origin (another
// port) embeds the widget with one script tag.  The visitor types a message; it must be stored; an
// agent's reply (signed in over the HTTP API, POST /api/v1/conversations/{id}/messages) must appear in
// the open window within 1 s without a reload; after a reload both are shown from the history.  Screenshots go to the build
// directory.  Exit 77 (ctest SKIP) when chromium or playwright-core is missing.
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const { freePort } = require("./lib.js");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PARLEY = process.env.PARLEY_BIN || path.resolve(__dirname, "../../build/parley");
const OUT = process.env.PARLEY_BUILD_DIR || path.resolve(__dirname, "../../build");
const TEXT = "안녕하세요, 주문 문의요";
const REPLY = "네, 주문번호를 알려주세요 <b>곧</b> 도와드릴게요";

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


function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (r) => {
      r.resume();
      r.on("end", () => resolve(r.statusCode));
    }).on("error", reject);
  });
}

async function waitHealthy(port, proc) {
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error("the gateway exited early");
    try {
      if ((await get(`http://127.0.0.1:${port}/healthz`)) === 200) return;
    } catch (e) { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the gateway did not become healthy");
}

// A JSON request to the gateway's HTTP API: {status, headers, body}.
function request(port, method, path, obj, headers) {
  return new Promise((resolve, reject) => {
    const body = obj === undefined ? "" : JSON.stringify(obj);
    const h = Object.assign({ "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }, headers || {});
    const r = http.request({ host: "127.0.0.1", port, method, path, headers: h }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (data += c));
      res.on("end", () => {
        let parsed = null;
        try { parsed = data ? JSON.parse(data) : null; } catch (e) { parsed = { raw: data }; }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    r.on("error", reject);
    r.end(body);
  });
}
function api(cfg, op, obj) {
  const out = execFileSync(PARLEY, ["api", "-c", cfg, op, JSON.stringify(obj)], { encoding: "utf8" });
  return JSON.parse(out);
}

const failures = [];
function check(cond, what) {
  if (!cond) {
    failures.push(what);
    console.error("FAIL:", what);
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-browser-"));
  const gwPort = await freePort();
  const pagePort = await freePort();
  const pageOrigin = `http://127.0.0.1:${pagePort}`;
  const cfg = path.join(dir, "parley.yaml");
  fs.writeFileSync(cfg, `data_dir: var
http:
  listen: 127.0.0.1:${gwPort}
channels:
  - name: site
    type: webchat
    config:
      secret: "browser-test-secret-0123456789abcdef"
      allowed_origins: ["${pageOrigin}"]
      title: "Shop support"
  - name: desk
    type: webchat
    config:
      secret: "browser-test-secret-0123456789abcdef"
      allowed_origins: ["${pageOrigin}"]
      prechat: true
pipelines:
  - name: inbound
    from: [site, desk]
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
`);
  const log = fs.openSync(path.join(dir, "gateway.log"), "a");
  const gw = spawn(PARLEY, ["run", "-c", cfg], { stdio: ["ignore", log, log] });
  const page_server = http.createServer((req, res) => {
    const channel = req.url.startsWith("/desk") ? "desk" : "site";
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>A shop</title></head>
<body style="font-family:sans-serif"><h1>A shop on another origin</h1><p>Products, prices, and a chat.</p>
<script src="http://127.0.0.1:${gwPort}/webchat/${channel}/widget.js"></script></body></html>`);
  }).listen(pagePort, "127.0.0.1");
  let browser;
  try {
    await waitHealthy(gwPort, gw);
    browser = await playwright.chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") console.error("page:", m.text()); });
    await page.goto(pageOrigin + "/");

    // Open the chat, type, send: the bubble gets the stored id once the gateway acknowledged the commit.
    await page.locator(".btn").click();
    await page.locator("textarea").fill(TEXT);
    await page.locator("textarea").press("Enter");
    const mine = page.locator(".msg.inbound", { hasText: TEXT });
    await mine.and(page.locator("[data-id]")).waitFor({ timeout: 5000 });
    const id = await mine.getAttribute("data-id");

    const stored = api(cfg, "message.get", { id });
    const m = stored.message || stored;
    check(m.text === TEXT && m.direction === "inbound" && m.channel === "site", `stored: ${JSON.stringify(m)}`);
    const urn = m.from;
    check(/^webchat:[0-9a-f]{32}$/.test(urn || ""), `the visitor's URN: ${urn}`);

    // An agent's reply appears in the open window within 1 s, without a reload.
    // The agent signs in over the HTTP API and replies in the visitor's conversation.
    const added = api(cfg, "agent.add", { name: "mina", email: "mina@example.com", role: "agent", teams: [],
                                          password: "mina-correct-horse" });
    check(added.ok, `agent added: ${JSON.stringify(added)}`);
    const login = await request(gwPort, "POST", "/api/v1/login", { email: "mina@example.com", password: "mina-correct-horse" });
    const cookie = ((login.headers["set-cookie"] || [])[0] || "").split(";")[0];
    check(login.status === 200 && cookie.startsWith("parley_session=pss_"), `the agent signs in: ${login.status} ${cookie}`);
    check(m.conversation_id, `the message is in a conversation: ${JSON.stringify(m)}`);
    const t0 = Date.now();
    const reply = await request(gwPort, "POST", `/api/v1/conversations/${m.conversation_id}/messages`, { text: REPLY },
                                { Cookie: cookie });
    const sent = reply.body || {};
    check(reply.status === 200 && sent.status === "queued", `the reply is queued: ${reply.status} ${JSON.stringify(sent)}`);
    await page.locator(".msg.outbound", { hasText: REPLY }).waitFor({ timeout: 3000 });
    const ms = Date.now() - t0;
    check(ms < 1000, `the reply appeared after ${ms} ms (want < 1000)`);
    // Text stays text: the reply's "<b>" is shown, not made bold.
    const bold = await page.locator(".msg.outbound b").count();
    check(bold === 0, "the reply's markup is shown as text");
    // A file through the "+" button: stored, shown by its name.
    await page.locator("input[type=file]").setInputFiles({ name: "receipt.txt", mimeType: "text/plain",
                                                          buffer: Buffer.from("order 1234") });
    const fileMsg = page.locator(".msg.inbound[data-id]", { hasText: "File: receipt.txt" });
    await fileMsg.waitFor({ timeout: 5000 });
    const fm = api(cfg, "message.get", { id: await fileMsg.getAttribute("data-id") });
    const fatt = ((fm.message || fm).attachments || [])[0] || {};
    check(fatt.name === "receipt.txt" && fatt.size === 10 && fatt.sha256, `the file's envelope: ${JSON.stringify(fatt)}`);
    await page.screenshot({ path: path.join(OUT, "webchat-live.png") });

    // After a reload, both come back from the history.
    await page.reload();
    await page.locator(".btn").click();
    await page.locator(".msg.inbound", { hasText: TEXT }).waitFor({ timeout: 5000 });
    await page.locator(".msg.outbound", { hasText: REPLY }).waitFor({ timeout: 5000 });
    const order = await page.locator(".msg").allTextContents();
    check(order.indexOf(TEXT) >= 0 && order.indexOf(TEXT) < order.indexOf(REPLY), `history in order: ${order}`);
    const token = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("parley-webchat:")));
    check(token.length === 1, "the session is kept in the host page's localStorage");
    await page.screenshot({ path: path.join(OUT, "webchat-reload.png") });

    // A channel with prechat: true asks name and e-mail first; they reach the envelope, unverified.
    const desk = await (await browser.newContext({ viewport: { width: 900, height: 700 } })).newPage();
    await desk.goto(pageOrigin + "/desk");
    await desk.locator(".btn").click();
    await desk.locator("input[name=name]").fill("Jiwoo Kim");
    await desk.locator("input[name=email]").fill("jiwoo@example.org");
    await desk.screenshot({ path: path.join(OUT, "webchat-prechat.png") });
    await desk.locator("text=Start the chat").click();
    await desk.locator("textarea").fill("배송은 언제 되나요?");
    await desk.locator("textarea").press("Enter");
    const deskMsg = desk.locator(".msg.inbound[data-id]");
    await deskMsg.waitFor({ timeout: 5000 });
    const dm = api(cfg, "message.get", { id: await deskMsg.getAttribute("data-id") });
    const dmeta = (dm.message || dm).meta || {};
    check(dmeta.contact_name === "Jiwoo Kim" && dmeta.webchat && dmeta.webchat.email === "jiwoo@example.org" &&
          dmeta.webchat.verified === false, `pre-chat fields in meta: ${JSON.stringify(dmeta)}`);
    console.log(`reply shown after ${ms} ms; screenshots in ${OUT}/webchat-live.png and webchat-reload.png, webchat-prechat.png`);
  } catch (e) {
    failures.push(String(e && e.stack || e));
    console.error(e);
    console.error(fs.readFileSync(path.join(dir, "gateway.log"), "utf8").split("\n").slice(-30).join("\n"));
  } finally {
    if (browser) await browser.close();
    page_server.close();
    gw.kill("SIGTERM");
    await new Promise((r) => gw.exitCode !== null ? r() : gw.on("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(`${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log("all checks passed");
}

main();
