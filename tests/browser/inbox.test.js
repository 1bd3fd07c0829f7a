// inbox.test.js: the agent inbox (/inbox/) in a real browser (Debian's chromium through playwright-core).
//
// The gateway runs with a WhatsApp channel and a Twilio SMS channel whose APIs are a small local server
// (it records what it is sent).  An agent of team a signs in on the page.  A WhatsApp message and an SMS
// from the same phone number arrive through signed webhooks: both must show in ONE conversation within
// 1 s, without a reload.  A reply typed in Korean through a simulated IME composition must not be sent by
// the Enter that confirms the composition; the Enter after it sends on SMS (the channel used last) and
// the SMS server receives it.  A private note reaches no provider.  Resolve moves the conversation out of
// "open".  Team b's conversation is not listed and its URL says "not found".  A half-written reply
// survives the session ending.  Screenshots go to build/screenshots/.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const path = require("path");
const zlib = require("zlib");
const { loadPlaywright, freePort, request, startGateway, check, finish, until, screenshotsDir,
        postTwilio, postSigned } = require("./lib.js");

const playwright = loadPlaywright();
const APP_SECRET = "wa-app-secret";
const PNID = "106540352242922";
const AC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const TW_TOKEN = "twilio-auth-token";
const PUBLIC = "https://parley.example.com";
const HOOKS_SECRET = "hooks-secret";
const FIXTURES = path.resolve(__dirname, "../fixtures");
const KOREAN = "네, 오늘 발송됩니다. 감사합니다!";
const NOTE = "VIP customer: refund approved by billing";

// A small real PNG (a gradient), so the browser has an image to decode.

// A fixture as the customer sends it now: its timestamp moved to this second, so that the 24-hour
// customer-service window is open (the core refuses free text outside it before the provider).
function justSent(buf) {
  return Buffer.from(buf.toString().replace(/"timestamp": "\d+"/g, `"timestamp": "${Math.floor(Date.now() / 1000)}"`));
}

function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push(40 + x, 100 + y, 200 - (x >> 1));
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr),
                        chunk("IDAT", zlib.deflateSync(Buffer.from(rows))), chunk("IEND", Buffer.alloc(0))]);
}
const IMAGE = png(160, 100);

// The providers' APIs: WhatsApp's Graph /messages and Twilio's Messages.json; every request is kept.
function fakeProviders(port) {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, body });
      if (req.method === "GET" && req.url === "/v19.0/1003383421387256") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ url: `http://127.0.0.1:${port}/media/lookaside/1003383421387256`, mime_type: "image/png",
                                 file_size: IMAGE.length, id: "1003383421387256", messaging_product: "whatsapp" }));
      } else if (req.method === "GET" && req.url === "/media/lookaside/1003383421387256") {
        res.writeHead(200, { "Content-Type": "image/png" });
        res.end(IMAGE);
      } else if (req.url.endsWith("/messages") && body.includes("FAILME")) {
        res.writeHead(400, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { message: "Message undeliverable", type: "OAuthException", code: 131026,
                                          error_data: { details: "Recipient is not a valid WhatsApp user" } } }));
      } else if (req.url.endsWith("/messages")) {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ messaging_product: "whatsapp", messages: [{ id: "wamid.out" + seen.length }] }));
      } else if (req.url.endsWith("/Messages.json")) {
        res.writeHead(201, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ sid: "SMout" + seen.length, status: "queued" }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  }).listen(port, "127.0.0.1");
  return { seen, server, posts: () => seen.filter((r) => r.method === "POST") };
}

function postWhatsApp(gw, body) {
  const sig = "sha256=" + crypto.createHmac("sha256", APP_SECRET).update(body).digest("hex");
  return request(gw.port, "POST", "/webhooks/wa", body, { "X-Hub-Signature-256": sig });
}

function postSms(gw, form) {
  return postTwilio(gw.port, PUBLIC, "/webhooks/sms", TW_TOKEN, form);
}

function postHook(gw, obj) {
  return postSigned(gw.port, "/webhooks/hooks", HOOKS_SECRET, obj);
}

async function main() {
  const fakePort = await freePort();
  const fake = fakeProviders(fakePort);
  const fakeUrl = `http://127.0.0.1:${fakePort}`;
  const gw = await startGateway((port) => `data_dir: var
http:
  listen: 127.0.0.1:${port}
  public_url: ${PUBLIC}
outbox:
  backoff_base: 100ms
  max_attempts: 3
channels:
  - name: wa
    type: whatsapp
    config:
      phone_number_id: "${PNID}"
      access_token: EAAG-test-token
      app_secret: ${APP_SECRET}
      verify_token: verify-me
      api_base_url: ${fakeUrl}
      api_version: v19.0
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
canned_responses:
  thanks: "Thanks {{contact.name|there}}, we are on it."
pipelines:
  - name: inbound
    from: [wa, sms, hooks]
    steps:
      - dedupe: {}
      - identify: {}
      - thread: {}
`);
  const shots = screenshotsDir();
  let browser, page;
  try {
    check(gw.api("agent.add", { name: "ana", email: "ana@example.com", role: "agent", teams: ["a"],
                                password: "ana-correct-horse" }).ok, "agent ana (team a) added");
    // Team b's conversation: another customer, routed to team b.
    check((await postHook(gw, { id: "b-1", from: "tel:+15550009999", text: "Team B secret matter" })).status === 200,
          "team b's message is accepted");
    const bMsg = gw.api("messages.list", { channel: "hooks" }).messages[0];
    const bConv = bMsg.conversation_id;
    check(gw.api("conversation.assign", { conversation_id: bConv, team: "b" }).ok, "team b's conversation assigned to b");

    browser = await playwright.chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                                 args: ["--no-sandbox"] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
    page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error" && !/status of (401|404|409)/.test(m.text())) console.error("page:", m.text()); });
    page.on("pageerror", (e) => check(false, "page error: " + e.message));
    const base = `http://127.0.0.1:${gw.port}/inbox/`;

    // Sign in.
    await page.goto(base);
    await page.locator("#login-form").waitFor({ timeout: 5000 });
    await page.fill("input[name=email]", "ana@example.com");
    await page.fill("input[name=password]", "wrong password!");
    await page.click("#login-form button[type=submit]");
    await page.locator("#login-error", { hasText: "Wrong e-mail or password" }).waitFor({ timeout: 5000 });
    await page.fill("input[name=password]", "ana-correct-horse");
    await page.click("#login-form button[type=submit]");
    await page.locator("#app:not([hidden])").waitFor({ timeout: 5000 });
    await page.locator("#me", { hasText: "ana" }).waitFor({ timeout: 5000 });
    await page.locator("#live.up").waitFor({ timeout: 5000 });

    // Acceptance 3: team b's conversation is not listed, and its URL shows "not found".
    await page.locator("#list .none, #list .item").first().waitFor({ timeout: 5000 });
    check(await page.locator(`#conv-${bConv}`).count() === 0, "team b's conversation is not in the list");
    check(!(await page.locator("#list").textContent()).includes("Team B secret"), "nor its text");
    await page.goto(base + "#/c/" + bConv);
    await page.locator(".notfound", { hasText: "Conversation not found" }).waitFor({ timeout: 5000 });
    check(!(await page.locator("#view").textContent()).includes("Team B secret"), "its timeline is not shown");
    await page.goto(base + "#/");

    // Acceptance 1: a WhatsApp message, then an SMS from the same number: one conversation, live.
    const waBody = justSent(fs.readFileSync(path.join(FIXTURES, "whatsapp/text.json")));
    let t0 = Date.now();
    check((await postWhatsApp(gw, waBody)).status === 200, "the WhatsApp webhook is accepted");
    const item = page.locator("#list .item", { hasText: "Kerry Fisher" });
    await item.waitFor({ timeout: 3000 });
    const waMs = Date.now() - t0;
    check(waMs < 1000, `the WhatsApp conversation appeared after ${waMs} ms (want < 1000)`);
    check((await item.textContent()).includes("Hello, is my order shipped?"), "the list shows the last message");
    check(await item.locator(".chan-whatsapp").count() === 1, "with the WhatsApp icon");
    check(await item.locator(".dot").count() === 1, "unread");
    // A photo on WhatsApp: shown inline from the authenticated attachment endpoint.
    check((await postWhatsApp(gw, justSent(fs.readFileSync(path.join(FIXTURES, "whatsapp/image.json"))))).status === 200,
          "the WhatsApp image is accepted");
    await item.click();
    await page.locator("#timeline .msg.inbound", { hasText: "Hello, is my order shipped?" }).waitFor({ timeout: 3000 });
    const img = page.locator("#timeline .msg.inbound img.inline-img");
    await until(async () => {
      await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
      await new Promise((r) => setTimeout(r, 200));
      return (await img.count()) === 1 && (await img.evaluate((el) => el.complete && el.naturalWidth));
    }, 5000);
    check((await img.count()) === 1 && (await img.evaluate((el) => el.naturalWidth)) === 160,
          "the image is shown inline, decoded");
    check(/\/api\/v1\/attachments\/[0-9a-f]{64}\?message_id=/.test((await img.getAttribute("src")) || ""),
          `from the attachment endpoint with its message: ${await img.getAttribute("src")}`);
    const convId = await item.getAttribute("data-id");
    check(await page.locator(`#conv-${convId} .dot`).count() === 0, "read once opened");

    const smsForm = fs.readFileSync(path.join(FIXTURES, "twilio/text.form"), "utf8").trim();
    t0 = Date.now();
    check((await postSms(gw, smsForm)).status === 200, "the SMS webhook is accepted");
    await page.locator("#timeline .msg.inbound", { hasText: "Where is my refund?" }).waitFor({ timeout: 3000 });
    const smsMs = Date.now() - t0;
    check(smsMs < 1000, `the SMS appeared in the open conversation after ${smsMs} ms (want < 1000)`);
    const msgs = page.locator("#timeline .msg.inbound");
    check(await msgs.count() === 3, `the three messages in one timeline: ${await msgs.count()}`);
    check((await msgs.nth(0).textContent()).includes("Hello") && (await msgs.nth(1).textContent()).includes("broken part") &&
          (await msgs.nth(2).textContent()).includes("refund"), "in order");
    check(await page.locator("#timeline .chan-whatsapp").count() === 2 && await page.locator("#timeline .chan-twilio").count() === 1,
          "each with its channel");
    check(await page.locator("#list .item", { hasText: "Kerry Fisher" }).count() === 1, "one conversation in the list");
    await page.locator(`#conv-${convId} .chan-twilio`).waitFor({ timeout: 2000 });
    check((await page.locator(`#conv-${convId}`).textContent()).includes("Where is my refund?"), "the list's last message is the SMS");
    const counts = await page.locator("#count-open").textContent();
    check(counts === "1", `open count: ${counts}`);

    // Acceptance 2: Korean through an IME composition: Enter while composing does not send.
    const box = page.locator("#reply-text");
    await box.focus();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Input.imeSetComposition", { text: "네, 오늘", selectionStart: 5, selectionEnd: 5 });
    await page.evaluate(() => {
      const t = document.getElementById("reply-text");
      t.dispatchEvent(new CompositionEvent("compositionstart", { bubbles: true, data: "" }));
      t.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", code: "Enter", bubbles: true, cancelable: true,
                                                      isComposing: true }));
      const legacy = new KeyboardEvent("keydown", { key: "Enter", code: "Enter", bubbles: true, cancelable: true });
      Object.defineProperty(legacy, "keyCode", { get: () => 229 });
      t.dispatchEvent(legacy);
    });
    await new Promise((r) => setTimeout(r, 700));
    check(fake.posts().length === 0, `Enter during the composition sent nothing: ${JSON.stringify(fake.posts())}`);
    check(await page.locator("#timeline .msg.outbound").count() === 0, "and nothing was added to the timeline");
    await cdp.send("Input.insertText", { text: KOREAN });
    await page.evaluate(() => document.getElementById("reply-text")
      .dispatchEvent(new CompositionEvent("compositionend", { bubbles: true, data: "" })));
    const typed = await box.inputValue();
    if (!check(typed === KOREAN, `the composed text is in the box: ${JSON.stringify(typed)}`)) await box.fill(KOREAN);
    await box.press("Enter");
    const sms = await until(() => fake.posts().find((r) => r.url.endsWith("/Messages.json")), 5000);
    check(sms && new URLSearchParams(sms.body).get("Body") === KOREAN && new URLSearchParams(sms.body).get("To") === "+15551234567",
          `the SMS provider received the reply: ${sms && sms.body}`);
    check(!fake.posts().some((r) => r.url.endsWith("/messages")), "nothing went to WhatsApp");
    await page.locator("#timeline .msg.outbound", { hasText: KOREAN }).waitFor({ timeout: 3000 });
    check(await box.inputValue() === "", "the box is empty after sending");
    // Its delivery status, once the provider accepted it, without a reload.
    await page.locator("#timeline .msg.outbound .status[data-status=sent]").first().waitFor({ timeout: 4000 });

    // A private note: shown apart, sent to no provider.
    const before = fake.posts().length;
    await page.check("#reply-note");
    await box.fill(NOTE);
    await box.press("Enter");
    await page.locator("#timeline .note", { hasText: NOTE }).waitFor({ timeout: 3000 });
    await new Promise((r) => setTimeout(r, 700));
    check(fake.posts().length === before, `the note reached no provider: ${fake.posts().length - before} request(s)`);
    await page.uncheck("#reply-note");

    // Canned responses on "/": the server fills the placeholders.
    await box.fill("/tha");
    await page.locator("#canned-menu li", { hasText: "/thanks" }).waitFor({ timeout: 2000 });
    await box.press("Enter");
    await page.locator("#canned-picked", { hasText: "thanks" }).waitFor({ timeout: 2000 });
    await box.press("Enter");
    await page.locator("#timeline .msg.outbound", { hasText: "Thanks Kerry Fisher, we are on it." }).waitFor({ timeout: 3000 });

    // A send the provider refuses shows failed with its reason; WhatsApp chosen in the chooser.
    await page.selectOption("#reply-channel", "wa");
    await box.fill("FAILME on WhatsApp");
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange"))); // a live refresh
    await new Promise((r) => setTimeout(r, 300));
    check(await page.locator("#reply-channel").inputValue() === "wa" && await box.inputValue() === "FAILME on WhatsApp",
          "a refresh keeps the chosen channel and the text");
    await box.press("Enter");
    const failedMsg = page.locator("#timeline .msg.outbound", { hasText: "FAILME" });
    await failedMsg.waitFor({ timeout: 3000 });
    check(await until(() => fake.posts().some((r) => r.url.endsWith("/messages") && r.body.includes("FAILME")), 3000),
          "the chooser's channel was used: WhatsApp got it");
    await failedMsg.locator(".status.bad").waitFor({ timeout: 5000 });
    const reason = await failedMsg.locator(".status").textContent();
    check(/^failed: .*undeliverable/i.test(reason), `failed with the provider's reason: ${reason}`);
    // Retry: the dead letter is queued again (message.retry) and the provider is asked once more.
    const failedPosts = fake.posts().filter((r) => r.url.endsWith("/messages") && r.body.includes("FAILME")).length;
    await failedMsg.locator("button.retry").click();
    check(await until(() => fake.posts().filter((r) => r.url.endsWith("/messages") && r.body.includes("FAILME")).length ===
                            failedPosts + 1, 5000), "Retry sends the dead letter once more");
    await page.locator("#timeline .msg.outbound.failed", { hasText: "FAILME" }).locator(".status.bad").waitFor({ timeout: 5000 });
    check((await failedMsg.textContent()).indexOf("sent") < 0 || /failed/.test(reason), "not shown as sent");
    await page.selectOption("#reply-channel", "");

    // Shift+Enter breaks the line; nothing is sent.
    const sent = fake.posts().length;
    await box.fill("first line");
    await box.press("Shift+Enter");
    await box.type("second line");
    check(await box.inputValue() === "first line\nsecond line", `Shift+Enter breaks the line: ${JSON.stringify(await box.inputValue())}`);
    check(fake.posts().length === sent, "and sends nothing");
    await box.fill("");

    // Assign to me.
    await page.click("text=Assign to me");
    await page.locator(".conv-head", { hasText: "Assigned to ana" }).waitFor({ timeout: 3000 });
    await page.locator("#timeline .event", { hasText: "Assigned to ana" }).waitFor({ timeout: 3000 });

    // The soft lock: held by bo, ana's reply asks first (the server refused it with conflict).
    check(gw.api("conversation.assign", { conversation_id: convId, assignee: "bo", team: "a" }).ok, "assigned to bo");
    await page.locator(".conv-head", { hasText: "Assigned to bo" }).waitFor({ timeout: 3000 });
    const asked = [];
    const onDialog = (d) => {
      asked.push(d.message());
      return asked.length === 1 ? d.dismiss() : d.accept();
    };
    page.on("dialog", onDialog);
    const beforeLock = fake.posts().length;
    await box.fill("bo is away, I will take it");
    await box.press("Enter");
    await until(() => asked.length === 1, 3000);
    await new Promise((r) => setTimeout(r, 500));
    check(asked.length === 1 && asked[0].includes("assigned to bo"), `the reply asked first: ${JSON.stringify(asked)}`);
    check(fake.posts().length === beforeLock, "dismissed: nothing sent");
    await box.press("Enter");
    await page.locator("#timeline .msg.outbound", { hasText: "bo is away" }).waitFor({ timeout: 3000 });
    check(asked.length === 2, "confirmed: sent");
    page.off("dialog", onDialog);
    await page.click("text=Assign to me");
    await page.locator(".conv-head", { hasText: "Assigned to ana" }).waitFor({ timeout: 3000 });

    // Collisions: bo (team a) opens the same conversation; ana sees him viewing, then typing.
    check(gw.api("agent.add", { name: "bo", email: "bo@example.com", role: "agent", teams: ["a"],
                                password: "bo-correct-horse" }).ok, "agent bo added");
    const boCtx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const bo = await boCtx.newPage();
    await bo.goto(base + "#/c/" + convId);
    await bo.fill("input[name=email]", "bo@example.com");
    await bo.fill("input[name=password]", "bo-correct-horse");
    await bo.click("#login-form button[type=submit]");
    await bo.locator("#reply-text").waitFor({ timeout: 5000 });
    await page.locator("#presence", { hasText: "bo is viewing" }).waitFor({ timeout: 6000 });
    await bo.locator("#reply-text").type("checking the refund");
    await page.locator("#presence", { hasText: "bo is typing" }).waitFor({ timeout: 6000 });
    await bo.locator("#presence", { hasText: "ana is viewing" }).waitFor({ timeout: 6000 });
    await boCtx.close();

    // Two more customers, so the list looks like a working day.
    await postHook(gw, { id: "c-1", from: "tel:+15550001111", text: "배송이 아직 안 왔어요. 확인 부탁드립니다",
                         meta: { contact_name: "김민지" } });
    await postHook(gw, { id: "d-1", from: "tel:+15550002222", text: "Can I change the delivery address?",
                         meta: { contact_name: "Jonas Berg" } });
    await page.locator("#list .item", { hasText: "Can I change the delivery address?" }).waitFor({ timeout: 3000 });
    check(await page.locator("#list .item .dot").count() === 2, "the two new ones are unread");

    // Acceptance 4: screenshots of the list, the conversation and the contact panel.
    await page.locator("#contact .identities li", { hasText: "whatsapp:15551234567" }).waitFor({ timeout: 3000 });
    check(await page.locator("#contact .identities li", { hasText: "tel:+15551234567" }).count() === 1,
          "the contact panel lists both identities");
    check(!/\b(null|undefined)\b/.test(await page.locator("#app").textContent()), "no null or undefined shown");
    await page.setViewportSize({ width: 1280, height: 1100 });
    await page.locator("#timeline").evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.screenshot({ path: path.join(shots, "inbox-conversation.png") });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.locator(".side").screenshot({ path: path.join(shots, "inbox-list.png") });
    await page.locator("#contact").screenshot({ path: path.join(shots, "inbox-contact.png") });

    // WCAG AA: every text on the page has 4.5:1 against its background (3:1 for large or bold 14pt text).
    const lowContrast = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (; el; el = el.parentElement) {
          const c = rgb(getComputedStyle(el).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const bad = [];
      const walker = document.createTreeWalker(document.getElementById("app"), NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement;
        if (!n.textContent.trim() || !el.offsetParent || el.closest("input, select, textarea")) continue;
        const st = getComputedStyle(el);
        const a = lum(rgb(st.color)), b = lum(background(el));
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) bad.push(`${n.textContent.trim().slice(0, 30)} (${ratio.toFixed(2)})`);
      }
      return bad;
    });
    check(lowContrast.length === 0, `text under WCAG AA contrast: ${JSON.stringify(lowContrast.slice(0, 10))}`);

    // The session ends: the login comes back, and the half-written reply is still there after it.
    const DRAFT = "반쯤 쓴 답장: 환불은";
    await box.fill(DRAFT);
    await context.clearCookies();
    await page.click("#tab-pending");
    await page.locator("#login:not([hidden])").waitFor({ timeout: 3000 });
    await page.fill("input[name=email]", "ana@example.com");
    await page.fill("input[name=password]", "ana-correct-horse");
    await page.click("#login-form button[type=submit]");
    await page.locator("#login[hidden]").waitFor({ state: "attached", timeout: 5000 });
    await page.locator("#reply-text").waitFor({ timeout: 5000 });
    check(await page.locator("#reply-text").inputValue() === DRAFT, `the draft survived: ${await page.locator("#reply-text").inputValue()}`);
    await page.reload();
    await page.locator("#reply-text").waitFor({ timeout: 5000 });
    check(await page.locator("#reply-text").inputValue() === DRAFT, "and a reload (sessionStorage)");
    await page.locator("#reply-text").fill("");

    // Resolve (the e key) moves it out of "open".
    await page.click("#tab-open");
    await page.locator(`#conv-${convId}`).waitFor({ timeout: 3000 });
    await page.locator("#timeline").click();
    await page.keyboard.press("e");
    await page.locator("#conv-status", { hasText: "resolved" }).waitFor({ timeout: 3000 });
    await page.locator(`#conv-${convId}`).waitFor({ state: "detached", timeout: 3000 });
    await page.locator("#count-resolved", { hasText: "1" }).waitFor({ timeout: 3000 });
    check(await page.locator("#count-open").textContent() === "2", "the two others are still open");
    await page.click("#tab-resolved");
    await page.locator(`#conv-${convId}`).waitFor({ timeout: 3000 });
    await page.locator("#timeline .event", { hasText: "Resolved by ana" }).waitFor({ timeout: 3000 });

    // The gateway restarts: the page's live stream reconnects with Last-Event-ID, so a message that
    // arrives before the page is back (it retries each second) is not missed.
    await page.locator("#live.up").waitFor({ timeout: 3000 });
    await gw.restart();
    t0 = Date.now();
    check((await postSms(gw, smsForm.replace(/SMa1b2c3d4e5f60718293a4b5c6d7e8f90/g, "SMafterrestart000000000000000001")
                                     .replace("Where+is+my+refund", "Back+again"))).status === 200,
          "an SMS right after the restart");
    check(!(await page.locator("#live.up").count()), "posted before the page had reconnected");
    await page.locator("#count-open", { hasText: "3" }).waitFor({ timeout: 5000 });
    console.log(`the missed SMS reached the page ${Date.now() - t0} ms after the restart`);

    // The keyboard reaches the list: Tab to an item, Enter opens it.
    await page.goto(base + "#/");
    await page.click("#tab-open");
    const firstItem = page.locator("#list .item").first();
    await firstItem.waitFor({ timeout: 3000 });
    const firstId = await firstItem.getAttribute("data-id");
    await page.locator("#list .item").nth(1).click();
    await firstItem.focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction((id) => location.hash === "#/c/" + id, firstId, { timeout: 3000 });
    check(await page.locator("[role=listbox] [role=option]").count() >= 1 && await page.locator("[role=log]").count() === 1,
          "ARIA roles on the list and the timeline");

    // j and k move through the list, r goes to the reply box.
    await page.click("#tab-open");
    await page.locator("#list .item").nth(1).waitFor({ timeout: 3000 });
    const order = await page.locator("#list .item").evaluateAll((els) => els.map((e) => e.dataset.id));
    await page.locator("#list .item").first().click();
    await page.locator("#timeline").click();
    await page.keyboard.press("j");
    await page.waitForFunction((id) => location.hash === "#/c/" + id, order[1], { timeout: 3000 });
    await page.locator("#timeline").click();
    await page.keyboard.press("k");
    await page.waitForFunction((id) => location.hash === "#/c/" + id, order[0], { timeout: 3000 });
    await page.locator("#reply-text").waitFor({ timeout: 3000 });
    await page.locator("#timeline").click();
    await page.keyboard.press("r");
    check(await page.evaluate(() => document.activeElement && document.activeElement.id) === "reply-text", "r: the reply box");

    // Labels, then the label filter keeps only those.
    await page.fill("#a-labels", "billing, 환불");
    await page.click("text=Save labels");
    await page.locator(`#conv-${order[0]} .tag.label`, { hasText: "환불" }).waitFor({ timeout: 3000 });
    await page.fill("#f-label", "환불");
    await page.press("#f-label", "Enter");
    await until(async () => (await page.locator("#list .item").count()) === 1, 3000);
    check(await page.locator("#list .item").count() === 1 && await page.locator(`#conv-${order[0]}`).count() === 1,
          "the label filter");
    check(await page.locator("#count-open").textContent() === "1", "the counts follow the filters");
    await page.fill("#f-label", "");
    await page.press("#f-label", "Enter");

    // Priority, then snooze until tomorrow: it leaves "open" for "snoozed".
    await page.locator(`#conv-${order[0]}`).click();
    await page.selectOption("#a-priority", "high");
    await page.locator(`#conv-${order[0]} .tag.prio`, { hasText: "high" }).waitFor({ timeout: 3000 });
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    await page.fill("#a-snooze", local);
    await page.click("#snooze");
    await page.locator("#conv-status", { hasText: "snoozed" }).waitFor({ timeout: 3000 });
    await page.locator(`#conv-${order[0]}`).waitFor({ state: "detached", timeout: 3000 });
    await page.locator("#count-snoozed", { hasText: "1" }).waitFor({ timeout: 3000 });

    // The shortcuts' list.
    await page.locator("#timeline").click();
    await page.keyboard.press("?");
    check(await page.locator("#help[open]").count() === 1, "? lists the shortcuts");
    await page.keyboard.press("Escape");

    // An admin merges Jonas Berg into 김민지 from the contact panel, then undoes it.
    check(gw.api("agent.add", { name: "root", email: "root@example.com", role: "admin", teams: [],
                                password: "root-correct-horse" }).ok, "admin added");
    const convOf = (urn) => gw.api("conversations.list", {}).conversations.find((c) =>
      gw.api("contact.get", { contact_id: c.contact_id }).contact.identities.some((i) => i.urn === urn));
    const kim = convOf("tel:+15550001111");
    const jonas = convOf("tel:+15550002222");
    const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const admin = await adminCtx.newPage();
    await admin.goto(base + "#/c/" + kim.id);
    await admin.fill("input[name=email]", "root@example.com");
    await admin.fill("input[name=password]", "root-correct-horse");
    await admin.click("#login-form button[type=submit]");
    await admin.locator("#merge-from").waitFor({ timeout: 5000 });
    check(await page.locator("#merge-from").count() === 0, "an agent has no merge form");
    await admin.fill("#merge-from", jonas.contact_id);
    await admin.click("#merge");
    await admin.locator("#contact .identities li", { hasText: "tel:+15550002222" }).waitFor({ timeout: 3000 });
    check(await admin.locator("#contact .identities li").count() === 2, "merged: both identities on one contact");
    await admin.click("#merge-undo-last");
    await admin.locator("#contact .identities li", { hasText: "tel:+15550002222" }).waitFor({ state: "detached", timeout: 3000 });
    check(await admin.locator("#contact .identities li").count() === 1, "unmerged");
    await adminCtx.close();

    // The reports page tells an agent it is for admins; it draws no table and no empty chart
    // (tests/browser/reports.test.js checks an admin's figures).
    await page.goto(base + "#/reports");
    await page.locator("#reports:not([hidden]) #reports-note", { hasText: "for admins" }).waitFor({ timeout: 3000 });
    check(!(await page.locator("#reports").textContent()).includes("coming"), "no placeholder text");
    check(await page.locator("#reports table, #reports canvas, #reports svg").count() === 0, "no table, no empty charts");
    console.log(`WhatsApp shown after ${waMs} ms, SMS after ${smsMs} ms; screenshots in ${shots}`);
  } catch (e) {
    check(false, String((e && e.stack) || e));
    if (page) await page.screenshot({ path: path.join(shots, "inbox-failure.png") }).catch(() => {});
    console.error(gw.logTail());
  } finally {
    if (browser) await browser.close();
    fake.server.close();
    await gw.stop();
  }
  finish();
}

main();
