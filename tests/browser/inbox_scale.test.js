// inbox_scale.test.js: the inbox's list over 10,000 stored conversations.
//
// bench/loadgen sends one webhook from each of 10,000 customers (as bench/api does), so the store holds
// 10,000 conversations.  An agent signs in on the page: the first page of the list (25 conversations,
// latest activity first, with the counts) must be on screen within 1 s of pressing "Sign in" on loopback.
// Scrolling the list to its end loads the next pages, without duplicates and in order.
"use strict";
const { execFileSync } = require("child_process");
const path = require("path");
const { loadPlaywright, startGateway, check, finish, until, screenshotsDir } = require("./lib.js");

const playwright = loadPlaywright();
const LOADGEN = process.env.PARLEY_LOADGEN || path.resolve(__dirname, "../../build/bench/loadgen");
const N = Number(process.env.PARLEY_INBOX_CONVERSATIONS || 10000);

async function main() {
  const gw = await startGateway((port) => `data_dir: var
http:
  listen: 127.0.0.1:${port}
channels:
  - name: hooks
    type: webhook
    config:
      secret: "bench"
pipelines:
  - name: inbound
    from: [hooks]
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
`);
  let browser;
  try {
    const t0 = Date.now();
    execFileSync(LOADGEN, ["-p", String(gw.port), "-c", "hooks", "-s", "bench", "-n", "32", "-d", "600", "-u", String(N),
                           "-N", String(N)], { stdio: ["ignore", "ignore", "inherit"] });
    const counts = gw.api("conversations.counts", {}).counts || {};
    check(counts.open === N, `${N} conversations stored: ${JSON.stringify(counts)}`);
    console.log(`seeded ${counts.open} conversations in ${Date.now() - t0} ms`);
    check(gw.api("agent.add", { name: "ana", email: "ana@example.com", role: "agent", teams: ["a"],
                                password: "ana-correct-horse" }).ok, "agent added");

    browser = await playwright.chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                                 args: ["--no-sandbox"] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => check(false, "page error: " + e.message));
    await page.goto(`http://127.0.0.1:${gw.port}/inbox/`);
    await page.fill("input[name=email]", "ana@example.com");
    await page.fill("input[name=password]", "ana-correct-horse");
    const start = Date.now();
    await page.click("#login-form button[type=submit]");
    await page.locator("#list .item").nth(24).waitFor({ timeout: 5000 });
    await page.locator("#count-open", { hasText: String(N) }).waitFor({ timeout: 5000 });
    const ms = Date.now() - start;
    check(ms < 1000, `the first page and the counts were on screen ${ms} ms after signing in (want < 1000)`);
    const first = await page.locator("#list .item").count();
    check(first >= 25 && first <= 50, `a page or two at first, not everything: ${first}`);
    await page.locator(".side").screenshot({ path: path.join(screenshotsDir(), "inbox-list-10000.png") });

    // Scrolling to the end of the list loads the next pages.
    for (const want of [first + 25, first + 50]) {
      // The list is drawn again on live changes, so an item element may be replaced at any moment: scroll the
      // list itself, as a user's wheel does, until the next page is there.
      const got = await until(async () => {
        await page.locator("#list").evaluate((el) => (el.scrollTop = el.scrollHeight));
        return (await page.locator("#list .item").count()) >= want;
      }, 5000);
      check(got, `scrolling loaded another page: ${await page.locator("#list .item").count()} (want ${want})`);
    }
    const ids = await page.locator("#list .item").evaluateAll((els) => els.map((e) => e.dataset.id));
    check(new Set(ids).size === ids.length, "no conversation twice");
    const times = await page.locator("#list .item time").evaluateAll((els) => els.map((e) => e.getAttribute("datetime")));
    check(times.every((t, i) => i === 0 || times[i - 1] >= t), "latest activity first");
    console.log(`first page after ${ms} ms; ${ids.length} conversations after scrolling`);
  } catch (e) {
    check(false, String((e && e.stack) || e));
    console.error(gw.logTail());
  } finally {
    if (browser) await browser.close();
    await gw.stop();
  }
  finish();
}

main();
