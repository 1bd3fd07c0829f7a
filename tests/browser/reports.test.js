// reports.test.js: the inbox's reports page (#/reports) in a real browser shows the figures of
// `parley stats --json` for the same period, per row (issue 16, acceptance 6).
//
// The gateway runs with an SMS channel (Twilio) and a generic webhook channel whose APIs are a small local
// server, business hours in Asia/Seoul, and a steered history clock (PARLEY_TEST_CLOCK, as the e2e KPI
// tests do).  A small history is made through the real webhooks and ops: customers write on both
// channels, conversations go to teams a and b (one through the queue), agents reply (the provider
// accepts), resolve, a customer comes back and the conversation reopens, one conversation is older than
// the period.  `parley stats --json` (and its text table) for November 2026 by channel and by team is
// what the admin's page must show in every cell; an agent is told the page is for admins.
// Screenshots go to build/screenshots/ (reports.png is docs/reports.png's source).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const { PARLEY, loadPlaywright, freePort, startGateway, check, finish, until, screenshotsDir, postTwilio,
        postSigned } = require("./lib.js");

const playwright = loadPlaywright();
const AC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const TW_TOKEN = "twilio-auth-token";
const PUBLIC = "https://parley.example.com";
const HOOKS_SECRET = "hooks-secret";
const T0 = Date.UTC(2026, 10, 2, 8, 30); // Monday 17:30 in Seoul: half an hour of business time left
const STEP = 4 * 60 * 1000;
const FROM = "2026-11-01", TO = "2026-12-01";

// `parley stats`' formats (core/cli_stats.c), written again here: "%.1f" rounds an exact tie to even
// (2.25: 2.2); a duration as 1h02m03s / 2m03s / 4.5s.
function fixed1(v) {
  const exact = Math.abs(v).toFixed(20).match(/\.(\d)50*$/);
  if (!exact) return v.toFixed(1);
  const down = v.toFixed(20).replace(/(\.\d)\d*$/, "$1");
  return Number(exact[1]) % 2 === 0 ? down : v.toFixed(1);
}
function dur(ms) {
  if (typeof ms !== "number") return "—";
  if (ms < 0) return "-" + dur(-ms);
  const s = Math.trunc(ms / 1000);
  const two = (n) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.trunc(s / 3600)}h${two(Math.trunc(s / 60) % 60)}m${two(s % 60)}s`;
  if (s >= 60) return `${Math.trunc(s / 60)}m${two(s % 60)}s`;
  return fixed1(ms / 1000) + "s";
}
const pct = (v) => (typeof v === "number" ? fixed1(v) + "%" : "—");
const num = (v) => (typeof v === "number" ? fixed1(v) : "—");

// Every column the page must show for a group's figures (business hours are configured), and an SLA
// target's when any row has it (slaColumns).
const COLUMNS = {
  opened: (f) => String(f.conversations_opened),
  frt_median: (f) => dur(f.first_response.median_ms),
  frt_p90: (f) => dur(f.first_response.p90_ms),
  frt_bmedian: (f) => dur(f.first_response.business_median_ms),
  frt_bp90: (f) => dur(f.first_response.business_p90_ms),
  ttr_median: (f) => dur(f.resolution.median_ms),
  ttr_p90: (f) => dur(f.resolution.p90_ms),
  ttr_bmedian: (f) => dur(f.resolution.business_median_ms),
  ttr_bp90: (f) => dur(f.resolution.business_p90_ms),
  fcr: (f) => pct(f.fcr.rate),
  reopen: (f) => pct(f.resolutions.reopen_rate),
  csat: (f) => pct(f.csat.score),
  nps: (f) => num(f.nps.score),
  bot: (f) => pct(f.bot.containment_rate),
  queue_median: (f) => dur(f.queue.median_ms),
  queue_p90: (f) => dur(f.queue.p90_ms),
};
function slaColumns(reply) {
  const cols = {};
  for (const t of ["first_response", "next_response", "resolution"]) {
    if (![...reply.groups, reply.total].some((f) => f.sla[t])) continue;
    cols[`sla_${t}_gap`] = (f) => dur(f.sla[t] ? f.sla[t].median_gap_ms : null);
    cols[`sla_${t}_breached`] = (f) => pct(f.sla[t] ? f.sla[t].breached_pct : null);
  }
  return cols;
}
// The columns of `parley stats`' text table, in its order (OPENED ... QUEUE-MED).
const CLI_COLUMNS = ["opened", "frt_median", "frt_p90", "ttr_median", "ttr_p90", "fcr", "reopen", "csat", "nps", "bot",
                     "queue_median"];

// The providers: Twilio's Messages.json and the webhook channel's outbound URL accept every send.
function fakeProviders(port) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url.endsWith("/Messages.json")) {
        res.writeHead(201, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ sid: "SMout" + Math.random().toString(16).slice(2), status: "queued" }));
      } else if (req.url === "/hooks-out") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ ok: true }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  }).listen(port, "127.0.0.1");
  return server;
}

function iso(ms) {
  return new Date(ms).toISOString();
}

async function main() {
  const clock = path.join(os.tmpdir(), `parley-reports-clock-${process.pid}`);
  const setStep = (step) => fs.writeFileSync(clock, iso(T0 + step * STEP));
  setStep(0);
  process.env.PARLEY_TEST_CLOCK = clock;
  const fakePort = await freePort();
  const fake = fakeProviders(fakePort);
  const fakeUrl = `http://127.0.0.1:${fakePort}`;
  const gw = await startGateway((port) => `data_dir: var
http:
  listen: 127.0.0.1:${port}
  public_url: ${PUBLIC}
outbox:
  max_attempts: 1
sla:
  policies:
    - name: everyone
      first_response: 10m
      resolution: 1h
reports:
  business_hours: { timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00" }
channels:
  - name: sms
    type: twilio
    config:
      account_sid: ${AC}
      auth_token: ${TW_TOKEN}
      from: "+14155550100"
      api_base_url: ${fakeUrl}
  - name: hooks
    type: webhook
    config:
      secret: "${HOOKS_SECRET}"
      outbound_url: ${fakeUrl}/hooks-out
pipelines:
  - name: inbound
    from: [sms, hooks]
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
`);
  const shots = screenshotsDir();
  let browser, page;
  try {
    check(gw.api("agent.add", { name: "root", email: "root@example.com", role: "admin", teams: [],
                                password: "root-correct-horse" }).ok, "admin root added");
    check(gw.api("agent.add", { name: "ana", email: "ana@example.com", role: "agent", teams: ["a"],
                                password: "ana-correct-horse" }).ok, "agent ana (team a) added");
    check(gw.api("agent.add", { name: "bo", email: "bo@example.com", role: "agent", teams: ["b"],
                                password: "bo-correct-horse" }).ok, "agent bo (team b) added");

    // ---------------------------------------------------------------- the history
    let sid = 0;
    const customers = {};
    async function writes(key, text) {
      const [channel, who] = key.split(":");
      let r;
      if (channel === "sms") {
        sid++;
        const form = new URLSearchParams({ MessageSid: `SM${String(sid).padStart(32, "0")}`, AccountSid: AC,
                                           From: who, To: "+14155550100", Body: text, NumMedia: "0" }).toString();
        r = await postTwilio(gw.port, PUBLIC, "/webhooks/sms", TW_TOKEN, form);
      } else {
        r = await postSigned(gw.port, "/webhooks/hooks", HOOKS_SECRET, { id: `${who}-${++sid}`, from: who, text });
      }
      check(r.status === 200, `${key}'s message is accepted: ${r.status} ${JSON.stringify(r.body)}`);
      if (!customers[key]) {
        const got = await until(() => gw.api("conversations.list", {}).conversations.find((c) =>
          !Object.values(customers).includes(c.id)), 5000);
        customers[key] = got && got.id;
      }
      return customers[key];
    }
    const replies = {};
    async function reply(conv, agent) {
      check(gw.api("message.send", { conversation_id: conv, text: "on it", by: agent }).ok !== false, "reply sent");
      replies[conv] = (replies[conv] || 0) + 1;
      // The outbox logs the reply once the provider accepted it: wait, so that it is at this clock time.
      const logged = await until(() => gw.api("conversation.get", { conversation_id: conv }).conversation.events
        .filter((e) => e.type === "replied").length >= replies[conv], 10000);
      check(logged, `the reply in ${conv} is in the history`);
    }
    const assign = (conv, assignee, team) =>
      check(gw.api("conversation.assign", { conversation_id: conv, assignee, team, by: "lead" }).ok, "assigned");
    const resolve = (conv, by) => check(gw.api("conversation.resolve", { conversation_id: conv, by }).ok, "resolved");

    setStep(-600); // October 31st: opened before the period
    await writes("hooks:old-customer", "an old question");
    setStep(0);
    const c1 = await writes("sms:+15550000001", "Where is my parcel?");
    setStep(1);
    assign(c1, "ana", "a");
    const c2 = await writes("sms:+15550000002", "My invoice is wrong");
    assign(c2, "bo", "b");
    setStep(3);
    await reply(c1, "ana");
    setStep(4);
    const c3 = await writes("hooks:web-visitor-3", "Do you ship to Jeju?");
    assign(c3, "ana", "a");
    setStep(5);
    const c4 = await writes("hooks:web-visitor-4", "Password reset does not arrive");
    check(gw.api("conversation.set", { conversation_id: c4, team: "b" }).ok, "c4 waits in team b's queue");
    setStep(6);
    await reply(c2, "bo");
    setStep(7);
    await writes("hooks:web-visitor-5", "hello?");
    setStep(9);
    assign(c4, "bo", "b");
    setStep(10);
    resolve(c1, "ana");
    setStep(11);
    await reply(c4, "bo");
    setStep(15);
    resolve(c4, "bo");
    setStep(20);
    await reply(c3, "ana");
    setStep(30);
    resolve(c2, "bo");
    setStep(40);
    await writes("sms:+15550000002", "It is still wrong"); // reopens c2
    setStep(45);
    await reply(c2, "bo");
    setStep(50);
    resolve(c2, "bo");
    setStep(60);

    const stats = (by, json) => execFileSync(PARLEY, ["stats", "-c", gw.cfg, "--from", FROM, "--to", TO, "--by", by]
      .concat(json ? ["--json"] : []), { cwd: gw.dir, encoding: "utf8" });
    const byChannel = JSON.parse(stats("channel", true));
    const byTeam = JSON.parse(stats("team", true));
    const byAgent = JSON.parse(stats("agent", true));
    check(byChannel.total.conversations_opened === 5, `5 conversations opened in the period: ${byChannel.total.conversations_opened}`);
    check(byChannel.groups.length === 2, `two channels: ${byChannel.groups.map((g) => g.key)}`);
    check(byTeam.groups.length >= 2, `two teams at least: ${byTeam.groups.map((g) => g.key)}`);
    check(typeof byChannel.total.resolutions.reopen_rate === "number" && byChannel.total.resolutions.reopen_rate > 0,
          "a resolution was reopened");
    check(byChannel.total.first_response.business_median_ms !== byChannel.total.first_response.median_ms,
          "business time differs from calendar time (the history crosses the end of the business day)");
    check(byChannel.total.sla.first_response && byChannel.total.sla.resolution && byChannel.total.sla.resolution.breached > 0,
          `the SLA promises were kept and broken: ${JSON.stringify(byChannel.total.sla)}`);

    // ---------------------------------------------------------------- the page
    browser = await playwright.chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                                 args: ["--no-sandbox"] });
    const context = await browser.newContext({ viewport: { width: 1760, height: 640 }, locale: "en-US" });
    page = await context.newPage();
    page.on("pageerror", (e) => check(false, "page error: " + e.message));
    const base = `http://127.0.0.1:${gw.port}/inbox/`;
    await page.goto(base + "#/reports");
    await page.fill("input[name=email]", "root@example.com");
    await page.fill("input[name=password]", "root-correct-horse");
    await page.click("#login-form button[type=submit]");
    await page.locator("#reports:not([hidden]) #reports-form:not([hidden])").waitFor({ timeout: 5000 });
    // The default period is the current month (UTC).
    const now = new Date();
    const month = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}-01`;
    check(await page.inputValue("#r-from") === month, `the period starts this month: ${await page.inputValue("#r-from")}`);
    check(!(await page.locator("#reports").textContent()).includes("coming"), "no placeholder text");

    async function showAndCompare(by, reply) {
      // Chosen with the keyboard: the dates typed, the dimension picked, Enter on Show.
      await page.focus("#r-from");
      await page.fill("#r-from", FROM);
      await page.fill("#r-to", TO);
      await page.selectOption("#r-by", by);
      await page.focus("#r-show");
      await page.keyboard.press("Enter");
      const table = page.locator(`#kpi-table[data-period="${reply.from}/${reply.to}/${by}"]`);
      await table.waitFor({ timeout: 5000 });
      const shown = await page.$$eval("#kpi-table tbody tr, #kpi-table tfoot tr", (trs) => trs.map((tr) => ({
        key: tr.querySelector("th").textContent,
        cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.col, td.textContent])),
      })));
      const want = reply.groups.map((g) => ({ key: g.key === null ? "(none)" : g.key, f: g }))
        .concat([{ key: "Total", f: reply.total }]);
      check(shown.length === want.length, `by ${by}: ${want.length} rows shown: ${shown.map((r) => r.key)}`);
      const cli = {};
      for (const line of stats(by, false).split("\n").slice(2)) {
        const cols = line.split(/\s+/).filter(Boolean);
        if (cols.length) cli[cols[0] === "TOTAL" ? "Total" : cols[0]] = cols.slice(1);
      }
      const columns = Object.assign({}, COLUMNS, slaColumns(reply));
      for (const [i, w] of want.entries()) {
        const row = shown[i] || { key: "(missing)", cells: {} };
        check(row.key === w.key, `by ${by}: row ${i} is ${w.key}: ${row.key}`);
        check(Object.keys(row.cells).join() === Object.keys(columns).join(),
              `by ${by}, ${w.key}: the columns are ${Object.keys(columns)}: ${Object.keys(row.cells)}`);
        for (const [col, fmt] of Object.entries(columns))
          check(row.cells[col] === fmt(w.f), `by ${by}, ${w.key}, ${col}: the page says ${row.cells[col]}, the JSON ${fmt(w.f)}`);
        // And the text `parley stats` prints ("-" for none, no % sign) says the same.
        CLI_COLUMNS.forEach((col, j) => {
          const text = (cli[w.key] || [])[j];
          const cell = (row.cells[col] || "").replace(/%$/, "").replace(/^—$/, "-");
          check(cell === text, `by ${by}, ${w.key}, ${col}: the page says ${row.cells[col]}, parley stats ${text}`);
        });
      }
      check(await page.locator("#reports svg.kpi-chart rect").count() === reply.groups.filter((g) => g.conversations_opened).length,
            `by ${by}: a bar per group with conversations`);
    }
    // The page rounds as C's printf does where toFixed would not (an exact tie goes to the even tenth).
    const rounded = await page.evaluate(async () => {
      const m = await import("./reports.js");
      return [m.duration(2250), m.percent(12.25), m.percent(12.75), m.percent(33.35), m.percent(-12.25), m.duration(59950)];
    });
    check(rounded.join(" ") === "2.2s 12.2% 12.8% 33.4% -12.2% 60.0s", `printf's rounding: ${rounded.join(" ")}`);
    check([2.25, 12.25, 12.75, 33.35, -12.25].map(fixed1).join(" ") === "2.2 12.2 12.8 33.4 -12.2", "the test's rounding");
    await showAndCompare("channel", byChannel);
    await page.screenshot({ path: path.join(shots, "reports.png"), fullPage: true });
    await showAndCompare("team", byTeam);
    await page.screenshot({ path: path.join(shots, "reports-team.png"), fullPage: true });
    await showAndCompare("agent", byAgent);

    // A period with no history: no table of dashes, no empty chart.
    await page.fill("#r-from", "2026-01-01");
    await page.fill("#r-to", "2026-02-01");
    await page.click("#r-show");
    await page.locator("#reports-empty", { hasText: "No conversations" }).waitFor({ timeout: 5000 });
    check(await page.locator("#reports table, #reports svg").count() === 0, "an empty period draws no table or chart");
    // A period backwards is refused in words.
    await page.fill("#r-to", "2025-12-01");
    await page.click("#r-show");
    await page.locator("#reports-status.error", { hasText: "start before the end" }).waitFor({ timeout: 3000 });

    // An agent is told the page is for admins; no table.  The API refuses her too.
    const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const agent = await agentCtx.newPage();
    await agent.goto(base + "#/reports");
    await agent.fill("input[name=email]", "ana@example.com");
    await agent.fill("input[name=password]", "ana-correct-horse");
    await agent.click("#login-form button[type=submit]");
    await agent.locator("#reports-note:not([hidden])", { hasText: "Reports are for admins" }).waitFor({ timeout: 5000 });
    check(await agent.locator("#reports table, #reports svg, #reports-form:not([hidden])").count() === 0,
          "an agent sees no form, table or chart");
    const status = await agent.evaluate(async (q) => (await fetch("/api/v1/reports/kpis" + q)).status,
                                        `?from=${FROM}&to=${TO}&by=channel`);
    check(status === 403, `the API refuses an agent: ${status}`);
    await agent.screenshot({ path: path.join(shots, "reports-agent.png") });
    await agentCtx.close();
    console.log(`screenshots in ${shots}`);
  } catch (e) {
    check(false, String((e && e.stack) || e));
    if (page) await page.screenshot({ path: path.join(shots, "reports-failure.png") }).catch(() => {});
    console.error(gw.logTail());
  } finally {
    if (browser) await browser.close();
    fake.close();
    await gw.stop();
    fs.rmSync(clock, { force: true });
  }
  finish();
}

main();
