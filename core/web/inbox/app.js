// app.js: the agent inbox.  One page: the conversation list (filters, counts, live), the
// conversation's timeline across channels, the reply box, the actions and the contact panel; the
// reports page is reports.js.
// Every text from the API is shown with textContent, never parsed as HTML.
import { ApiError, get, liveEvents, onUnauthorized, patch, post, query } from "./api.js";
import { showReports } from "./reports.js";

const PAGE = 25;
const STATUSES = ["open", "pending", "snoozed", "resolved"];
const CHANNEL_ICONS = {
  whatsapp: ["WA", "WhatsApp"], twilio: ["SMS", "SMS"], telegram: ["TG", "Telegram"], email: ["@", "E-mail"],
  webchat: ["Web", "Web chat"], slack: ["SL", "Slack"], messenger: ["FB", "Messenger"],
  instagram: ["IG", "Instagram"], webhook: ["API", "Webhook"],
};

const state = {
  me: null,
  filters: { status: "open", mine: false, team: "", label: "", channel: "" },
  items: [], // the list's conversations, in order
  page: 0,
  more: true,
  loading: false,
  current: null, // the open conversation (conversation.get's object)
  currentId: null,
  canned: [],
  cannedPick: null, // the canned response chosen in the reply box
  lastMerge: null, // {id, into}: the merge this page made last, to undo
  stopEvents: null,
  presence: [], // the others viewing the open conversation (conversation.presence)
  typingUntil: 0,
};

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const $ = (id) => document.getElementById(id);

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
                 : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " +
                   d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function channelIcon(type, name) {
  const [short, label] = CHANNEL_ICONS[type] || [(type || "?").slice(0, 3).toUpperCase(), type || "channel"];
  return h("span", { class: `chan chan-${type || "unknown"}`, title: `${label}${name ? " (" + name + ")" : ""}`,
                     "aria-label": label }, short);
}

function contactName(c) {
  return (c && (c.contact_name || (c.contact && c.contact.name))) || "Customer";
}

function seenKey(id) {
  return "parley-inbox:seen:" + id;
}

function unread(c) {
  const last = c.last_inbound_at;
  if (!last) return false;
  const seen = localStorage.getItem(seenKey(c.id));
  return !seen || seen < last;
}

function draftKey(id) {
  return "parley-inbox:draft:" + id;
}

function toast(text, kind) {
  const t = h("div", { class: `toast ${kind || ""}`, role: "status" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 4000);
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401) return; // the login is shown
  toast(e.message || String(e), "bad");
}

// ------------------------------------------------------------------ sign in

async function start() {
  onUnauthorized(() => showLogin("Your session has ended: sign in again. What you were typing is kept."));
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("help-button").addEventListener("click", () => $("help").showModal());
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", shortcut);
  setupFilters();
  try {
    state.me = await get("/me");
  } catch (e) {
    showLogin("");
    return;
  }
  enter();
}

function showLogin(why) {
  // Several requests may fail at once: the first shows the form, the others leave its focus alone.
  if (!$("login").hidden) return;
  if (state.stopEvents) state.stopEvents();
  state.stopEvents = null;
  $("login-why").textContent = why || "";
  $("login").hidden = false;
  $("app").setAttribute("aria-hidden", "true");
  $("login-form").elements.email.focus();
}

async function login(ev) {
  ev.preventDefault();
  const f = ev.target.elements;
  $("login-error").textContent = "";
  try {
    await post("/login", { email: f.email.value, password: f.password.value });
    state.me = await get("/me");
  } catch (e) {
    $("login-error").textContent =
        e.status === 429 ? "Too many tries: wait a moment." : e.status === 401 ? "Wrong e-mail or password." : e.message;
    return;
  }
  f.password.value = "";
  $("login").hidden = true;
  enter();
}

async function logout() {
  try {
    await post("/logout");
  } catch (e) { /* signed out anyway */ }
  state.me = null;
  $("app").hidden = true;
  showLogin("Signed out.");
}

function enter() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("app").removeAttribute("aria-hidden");
  $("me").textContent = `${state.me.name} (${state.me.role})`;
  const team = $("f-team");
  team.replaceChildren(h("option", { value: "" }, "all teams"),
                       ...(state.me.teams || []).map((t) => h("option", { value: t }, t)));
  team.value = state.filters.team;
  get("/canned_responses").then((r) => (state.canned = r.canned_responses || [])).catch(() => {});
  state.stopEvents = liveEvents(onLiveEvent, (up) => $("live").classList.toggle("up", up));
  reloadList();
  route();
}

// ------------------------------------------------------------------ the list

function setupFilters() {
  const tabs = $("status-tabs");
  for (const s of STATUSES) {
    tabs.append(h("button", { type: "button", role: "tab", id: "tab-" + s, "data-status": s,
                              onclick: () => setFilter("status", s) },
                  s[0].toUpperCase() + s.slice(1), " ", h("span", { class: "count", id: "count-" + s }, "")));
  }
  $("f-mine").addEventListener("change", (e) => setFilter("mine", e.target.checked));
  $("f-team").addEventListener("change", (e) => setFilter("team", e.target.value));
  for (const k of ["label", "channel"]) $("f-" + k).addEventListener("change", (e) => setFilter(k, e.target.value.trim()));
  $("list").addEventListener("scroll", () => {
    if (nearEnd()) loadMore();
  }, { passive: true });
}

function setFilter(k, v) {
  state.filters[k] = v;
  reloadList();
}

function listQuery(page) {
  const f = state.filters;
  return { status: f.status, assignee: f.mine ? state.me.name : "", team: f.team, label: f.label,
           channel: f.channel, page };
}

async function reloadList() {
  for (const s of STATUSES) $("tab-" + s).setAttribute("aria-selected", String(state.filters.status === s));
  state.items = [];
  state.page = 0;
  state.more = true;
  renderList();
  loadCounts();
  await loadMore();
}

async function loadMore() {
  if (state.loading || !state.more || !state.me) return;
  state.loading = true;
  $("list-more").textContent = "Loading…";
  try {
    const r = await get("/conversations" + query(listQuery(state.page + 1)));
    const got = r.conversations || [];
    const known = new Set(state.items.map((c) => c.id));
    state.items.push(...got.filter((c) => !known.has(c.id)));
    state.page++;
    state.more = got.length === PAGE;
  } catch (e) {
    failed(e);
  } finally {
    state.loading = false;
    renderList();
    $("list-more").textContent = state.more ? "" : state.items.length ? "No more conversations." : "";
  }
  // A tall window may show the end of the list at once: load until the list can scroll.
  const list = $("list");
  if (state.more && list.scrollHeight <= list.clientHeight) loadMore();
}

// Scrolled to within a few items of the list's end.
function nearEnd() {
  const list = $("list");
  return list.scrollTop + list.clientHeight >= list.scrollHeight - 200;
}

// A live change: the first page again, merged at the top; what was loaded past it stays.
async function refreshTop() {
  try {
    const r = await get("/conversations" + query(listQuery(1)));
    const top = r.conversations || [];
    const ids = new Set(top.map((c) => c.id));
    const rest = state.items.slice(PAGE).filter((c) => !ids.has(c.id));
    state.items = top.concat(rest);
    renderList();
  } catch (e) {
    failed(e);
  }
  loadCounts();
}

async function loadCounts() {
  const f = state.filters;
  try {
    const r = await get("/conversations/counts" + query({ assignee: f.mine ? state.me.name : "", team: f.team,
                                                          label: f.label, channel: f.channel }));
    for (const s of STATUSES) $("count-" + s).textContent = String((r.counts || {})[s] || 0);
  } catch (e) {
    for (const s of STATUSES) $("count-" + s).textContent = "";
  }
}

function renderList() {
  const list = $("list");
  // A live update must not take the keyboard focus away from the item it was on.
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#list .item");
  const focusId = focused ? focused.dataset.id : null;
  list.replaceChildren(...state.items.map((c) => {
    const last = c.last_message || {};
    const open = () => (location.hash = "#/c/" + c.id);
    const li = h("li", { role: "option", id: "conv-" + c.id, "data-id": c.id, tabindex: "0",
                         "aria-selected": String(c.id === state.currentId),
                         "aria-label": `${contactName(c)}${unread(c) ? ", unread" : ""}: ${last.text || ""}`,
                         class: "item" + (unread(c) ? " unread" : "") + (c.id === state.currentId ? " current" : ""),
                         onclick: open,
                         onkeydown: (e) => {
                           if (e.key === "Enter" || e.key === " ") {
                             e.preventDefault();
                             open();
                           }
                         } },
                 channelIcon(last.channel_type, last.channel || c.last_channel),
                 h("div", { class: "item-main" },
                   h("div", { class: "item-top" },
                     h("span", { class: "name" }, contactName(c)),
                     unread(c) ? h("span", { class: "dot", "aria-label": "unread" }, "") : null,
                     h("time", { datetime: c.updated_at }, when(c.updated_at))),
                   h("div", { class: "item-last" },
                     last.direction === "outbound" ? h("span", { class: "muted" }, "You: ") : null,
                     last.private ? "Note: " : null,
                     last.text || (last.id ? "(attachment)" : "")),
                   h("div", { class: "item-tags" },
                     c.assignee ? h("span", { class: "tag" }, "@" + c.assignee) : null,
                     c.team ? h("span", { class: "tag" }, c.team) : null,
                     c.priority ? h("span", { class: "tag prio" }, c.priority) : null,
                     ...(c.labels || []).map((l) => h("span", { class: "tag label" }, l)))));
    return li;
  }));
  if (!state.items.length && !state.loading) list.append(h("li", { class: "muted none" }, "No conversations."));
  if (focusId && $("conv-" + focusId)) $("conv-" + focusId).focus({ preventScroll: true });
}

// ------------------------------------------------------------------ live

let liveTimer = null;
function onLiveEvent(topic, data) {
  if (topic === "ready") return;
  clearTimeout(liveTimer);
  liveTimer = setTimeout(refreshTop, 50);
  if (data && data.conversation_id && data.conversation_id === state.currentId) openConversation(state.currentId, true);
}

// ------------------------------------------------------------------ routing

function route() {
  if (!state.me) return;
  const hash = location.hash || "#/";
  const reports = hash.startsWith("#/reports");
  $("inbox").hidden = reports;
  $("reports").hidden = !reports;
  $("nav-reports").setAttribute("aria-current", reports ? "page" : "false");
  $("nav-inbox").setAttribute("aria-current", reports ? "false" : "page");
  if (reports) showReports(state.me, h);
  const m = hash.match(/^#\/c\/([A-Za-z0-9_-]+)/);
  if (m) openConversation(m[1]);
}

// ------------------------------------------------------------------ the conversation

async function openConversation(id, quiet) {
  const switching = id !== state.currentId;
  state.currentId = id;
  if (switching) {
    state.cannedPick = null;
    state.presence = [];
    state.typingUntil = 0;
    setTimeout(beat, 0);
    $("contact").replaceChildren();
    if (!quiet) $("view").replaceChildren(h("p", { class: "muted empty" }, "Loading…"));
  }
  let c;
  try {
    c = (await get("/conversations/" + encodeURIComponent(id))).conversation;
  } catch (e) {
    if (state.currentId !== id) return;
    if (e.status === 404) {
      state.current = null;
      $("view").replaceChildren(h("div", { class: "notfound", role: "alert" },
                                  h("h2", {}, "Conversation not found"),
                                  h("p", { class: "muted" }, "It does not exist, or it belongs to a team you are not in.")));
      return;
    }
    failed(e);
    return;
  }
  if (state.currentId !== id) return;
  state.current = c;
  if (c.last_inbound_at) localStorage.setItem(seenKey(id), c.last_inbound_at);
  renderConversation(c, switching);
  renderList();
  loadContact(c.contact_id); // a new message may have brought a new identity
}

function timelineEntries(c) {
  const out = [];
  for (const m of c.timeline || []) out.push({ at: m.received_at || m.sent_at, kind: "message", m });
  for (const n of c.notes || []) out.push({ at: n.created_at, kind: "note", n });
  for (const e of c.events || []) out.push({ at: e.at, kind: "event", e });
  // Stable: messages keep the store's order when times tie.
  return out.map((x, i) => [x, i]).sort((a, b) => (a[0].at < b[0].at ? -1 : a[0].at > b[0].at ? 1 : a[1] - b[1]))
            .map((x) => x[0]);
}

function deliveryStatus(m) {
  if (m.direction !== "outbound") return null;
  const s = m.status || "queued";
  const bad = s === "failed" || s === "dead" || s === "undelivered";
  return h("span", { class: "status" + (bad ? " bad" : ""), "data-status": s },
           bad ? `failed${m.error ? ": " + m.error : ""}` : s);
}

function attachmentView(m, a) {
  const url = `/api/v1/attachments/${encodeURIComponent(a.sha256 || "")}?message_id=${encodeURIComponent(m.id)}`;
  if (!a.sha256) return h("span", { class: "muted" }, `(attachment not stored: ${a.name || a.content_type || "file"})`);
  if ((a.content_type || "").startsWith("image/"))
    return h("a", { href: url, target: "_blank", rel: "noopener" },
             h("img", { class: "inline-img", src: url, alt: a.name || "image", loading: "lazy" }));
  return h("a", { class: "file", href: url, download: a.name || "file" }, `⬇ ${a.name || a.content_type || "file"}`,
           a.size ? ` (${Math.ceil(a.size / 1024)} KiB)` : "");
}

function eventText(e) {
  const d = e.data || {};
  switch (e.type) {
  case "assigned": return `Assigned to ${d.assignee || "nobody"}${d.team ? " (team " + d.team + ")" : ""}`;
  case "resolved": return `Resolved${d.by ? " by " + d.by : ""}`;
  case "reopened": return "Reopened";
  case "opened": return "Conversation opened";
  case "updated": return "Updated: " + Object.keys(d).filter((k) => k !== "conversation_id" && k !== "by").join(", ");
  case "queued": return `Waiting in ${d.team || "the"} queue`;
  case "replied": return `Replied by ${d.by || "an agent"}`;
  case "bot.claimed": return `Taken by ${d.bot || "a bot"}`;
  case "bot.handoff": return d.to === "queue" ? `Handed to the ${d.team || ""} queue by ${d.bot || "the bot"}`
                                               : `Taken from ${d.bot || "the bot"} by ${d.by || "an agent"}`;
  case "merged": return "Contacts merged";
  case "first_response": return "First response";
  case "sla.due": return `SLA ${(d.target || "").replace("_", " ")} due ${when(d.due)} (${d.policy || "policy"})`;
  case "sla.warning": return `SLA ${(d.target || "").replace("_", " ")} at risk: due ${when(d.due)}`;
  case "sla.breached": return `SLA ${(d.target || "").replace("_", " ")} breached: was due ${when(d.due)}`;
  case "sla.met": return `SLA ${(d.target || "").replace("_", " ")} met`;
  case "rated": return `Rated ${d.score}${d.survey === "nps" ? "/10 (NPS)" : "/5"}${d.agent ? " for " + d.agent : ""}`;
  case "rating_comment": return `Rating comment: ${d.comment || ""}`;
  default: return e.type;
  }
}

function renderEntry(x) {
  if (x.kind === "message") {
    const m = x.m;
    const failedSend = m.direction === "outbound" && (m.status === "failed" || m.status === "dead");
    return h("article", { class: `msg ${m.direction}` + (failedSend ? " failed" : ""), "data-id": m.id,
                          "aria-label": `${m.direction === "inbound" ? "From the customer" : "Reply"} on ${m.channel}` },
             h("div", { class: "meta" }, channelIcon(m.channel_type, m.channel), h("span", {}, m.channel),
               h("time", { datetime: x.at }, when(x.at)), deliveryStatus(m)),
             m.text ? h("div", { class: "text" }, m.text) : null,
             (m.attachments || []).map((a) => h("div", { class: "att" }, attachmentView(m, a))),
             failedSend ? h("div", { class: "retry-note" }, "Not delivered. ",
                            h("button", { type: "button", class: "retry",
                                          onclick: () => post(`/messages/${m.id}/retry`)
                                                           .then(() => openConversation(m.conversation_id, true))
                                                           .catch(failed) }, "Retry"))
                        : null);
  }
  if (x.kind === "note")
    return h("article", { class: "note", "aria-label": "Private note" },
             h("div", { class: "meta" }, h("span", { class: "note-tag" }, "Private note"), h("span", {}, x.n.author || ""),
               h("time", { datetime: x.at }, when(x.at))),
             h("div", { class: "text" }, x.n.text));
  return h("div", { class: "event", role: "note" }, eventText(x.e), " · ", h("time", { datetime: x.at }, when(x.at)));
}

function renderConversation(c, switching) {
  const view = $("view");
  const timeline = h("div", { id: "timeline", class: "timeline", role: "log", "aria-label": "Timeline",
                              "aria-live": "polite" }, timelineEntries(c).map(renderEntry));
  const head = h("div", { class: "conv-head" },
                 h("h2", {}, contactName(c)),
                 h("span", { class: `badge st-${c.status}`, id: "conv-status" }, c.status),
                 c.status === "snoozed" && c.snoozed_until ? h("span", { class: "muted" }, "until " + when(c.snoozed_until))
                                                         : null,
                 h("span", { class: "muted" }, c.assignee ? "Assigned to " + c.assignee : "Unassigned",
                   c.team ? " · team " + c.team : ""),
                 h("span", { id: "presence", class: "presence", role: "status", "aria-live": "polite" }, presenceText()));
  const acts = actions(c);
  // A refresh of the same conversation leaves the reply box alone: its text, channel, canned
  // response, focus and an IME composition in progress all survive.
  const form = view.querySelector("form.reply");
  const old = [".conv-head", ".actions", ".timeline"].map((sel) => view.querySelector(":scope > " + sel));
  if (!switching && form && form.dataset.id === c.id && old.every(Boolean)) {
    const was = old[2];
    const atEnd = was.scrollTop + was.clientHeight >= was.scrollHeight - 40;
    old[0].replaceWith(head);
    old[1].replaceWith(acts);
    was.replaceWith(timeline);
    timeline.scrollTop = atEnd ? timeline.scrollHeight : was.scrollTop;
    updateReplyBox(form, c);
    return;
  }
  view.replaceChildren(head, acts, timeline, replyBox(c));
  timeline.scrollTop = timeline.scrollHeight;
}

function actions(c) {
  const id = c.id;
  const act = (label, fn, attrs) => h("button", Object.assign({ type: "button", onclick: () => fn().catch(failed) }, attrs || {}),
                                      label);
  const done = () => openConversation(id, true).then(refreshTop);
  const mine = c.assignee === state.me.name;
  const assignee = h("input", { id: "a-assignee", size: 8, placeholder: "agent", "aria-label": "Agent",
                                value: c.assignee || "" });
  const team = h("input", { id: "a-team", size: 8, placeholder: "team", "aria-label": "Team", value: c.team || "" });
  const snooze = h("input", { id: "a-snooze", type: "datetime-local", "aria-label": "Snooze until" });
  const labels = h("input", { id: "a-labels", size: 12, placeholder: "labels, comma separated", "aria-label": "Labels",
                              value: (c.labels || []).join(", ") });
  const prio = h("select", { id: "a-priority", "aria-label": "Priority" },
                 ["", "low", "normal", "high", "urgent"].map((p) => h("option", { value: p, selected: (c.priority || "") === p },
                                                                      p || "no priority")));
  prio.addEventListener("change", () => patch("/conversations/" + id, { priority: prio.value }).then(done).catch(failed));
  return h("div", { class: "actions", role: "toolbar", "aria-label": "Actions" },
           mine ? null : act("Assign to me", () => post(`/conversations/${id}/assign`, { assignee: state.me.name,
                                                                                        team: c.team || undefined }).then(done)),
           h("span", { class: "group" }, assignee, team,
             act("Assign", () => post(`/conversations/${id}/assign`, { assignee: assignee.value.trim() || undefined,
                                                                        team: team.value.trim() || undefined }).then(done))),
           c.status === "resolved" ? act("Reopen", () => post(`/conversations/${id}/reopen`).then(done), { id: "reopen" })
                                   : act("Resolve", () => post(`/conversations/${id}/resolve`).then(done), { id: "resolve" }),
           h("span", { class: "group" }, snooze,
             act("Snooze", () => {
               if (!snooze.value) return Promise.reject(new Error("choose when the conversation wakes"));
               return post(`/conversations/${id}/snooze`, { snoozed_until: new Date(snooze.value).toISOString() }).then(done);
             }, { id: "snooze" })),
           h("span", { class: "group" }, labels,
             act("Save labels", () => patch("/conversations/" + id, {
               labels: labels.value.split(",").map((s) => s.trim()).filter(Boolean) }).then(done))),
           prio);
}

// ------------------------------------------------------------------ the reply box

function channelsOf(c) {
  const seen = new Map();
  for (const m of c.timeline || []) if (m.channel && m.direction === "inbound") seen.set(m.channel, m.channel_type);
  return seen;
}

function replyBox(c) {
  const id = c.id;
  const text = h("textarea", { id: "reply-text", rows: 3, "aria-label": "Reply",
                               placeholder: "Reply… (Enter sends, Shift+Enter new line, / canned responses)" });
  text.value = sessionStorage.getItem(draftKey(id)) || "";
  const chooser = h("select", { id: "reply-channel", "aria-label": "Send on" }, channelOptions(c));
  const note = h("input", { id: "reply-note", type: "checkbox" });
  const picked = h("div", { id: "canned-picked", class: "canned-picked", hidden: true });
  const menu = h("ul", { id: "canned-menu", class: "canned-menu", role: "listbox", "aria-label": "Canned responses",
                         hidden: true });
  const window24 = whatsappWindow(c);
  const send = h("button", { type: "submit", class: "primary", id: "reply-send" }, "Send");
  const form = h("form", { class: "reply", "aria-label": "Reply", "data-id": id },
                 window24 || h("p", { class: "warn", hidden: true }), picked, menu, text,
                 h("div", { class: "reply-bar" },
                   h("label", {}, "Send on ", chooser),
                   h("label", {}, note, " Private note"),
                   send));
  note.addEventListener("change", () => {
    form.classList.toggle("as-note", note.checked);
    send.textContent = note.checked ? "Add note" : "Send";
  });
  text.addEventListener("input", () => {
    sessionStorage.setItem(draftKey(id), text.value);
    const wasTyping = state.typingUntil > Date.now();
    state.typingUntil = Date.now() + 4000;
    if (!wasTyping) beat();
    updateCannedMenu(text, menu);
  });
  text.addEventListener("keydown", (e) => {
    if (!menu.hidden && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      moveCanned(menu, e.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (e.key === "Escape" && !menu.hidden) {
      menu.hidden = true;
      return;
    }
    if (e.key !== "Enter" || e.shiftKey) return;
    // Enter that confirms an IME composition (Korean, Japanese) is not a send.
    if (e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    if (!menu.hidden) {
      const sel = menu.querySelector("[aria-selected=true]") || menu.firstElementChild;
      if (sel) pickCanned(sel.dataset.name, text, menu, picked);
      return;
    }
    form.requestSubmit();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    const sentText = text.value;
    if (state.cannedPick) body.canned = state.cannedPick;
    else if (text.value.trim()) body.text = text.value;
    else return;
    if (note.checked) {
      if (body.canned) return toast("A canned response is sent to the customer, not kept as a note.", "bad");
      body.private = true;
    } else if (chooser.value) body.channel = chooser.value;
    send.disabled = true;
    try {
      await sendReply(id, body);
      // Unless the agent has already typed something else meanwhile.
      if (text.value === sentText) text.value = "";
      if ((sessionStorage.getItem(draftKey(id)) || "") === sentText) sessionStorage.removeItem(draftKey(id));
      state.cannedPick = null;
      picked.hidden = true;
      await openConversation(id, true);
      // A delivery status is no live event of its own: look again while the provider answers.
      if (!body.private) for (const ms of [1000, 3000, 8000]) setTimeout(() => state.currentId === id && openConversation(id, true), ms);
    } catch (err) {
      failed(err);
    } finally {
      send.disabled = false;
    }
  });
  return form;
}

function channelOptions(c) {
  return [h("option", { value: "" }, `the channel used last${c.last_channel ? " (" + c.last_channel + ")" : ""}`),
          ...[...channelsOf(c)].map(([name, type]) => h("option", { value: name }, `${name} (${type})`))];
}

// A refresh: the channels and the WhatsApp window may have changed; the rest is the agent's.
function updateReplyBox(form, c) {
  const chooser = form.querySelector("#reply-channel");
  const options = channelOptions(c);
  const labels = (list) => [...list].map((o) => o.value + o.textContent).join("|");
  if (labels(chooser.options) !== labels(options)) {
    const was = chooser.value;
    chooser.replaceChildren(...options);
    if ([...chooser.options].some((o) => o.value === was)) chooser.value = was;
  }
  const note = whatsappWindow(c) || h("p", { class: "warn", hidden: true });
  form.querySelector(".warn").replaceWith(note);
}

// Replying in a conversation another agent holds asks first; the server insists too (conflict).
async function sendReply(id, body) {
  try {
    return await post(`/conversations/${id}/messages`, body);
  } catch (e) {
    if (e.code !== "conflict") throw e;
    if (!confirm(`${e.message}\n\nSend anyway?`)) throw new Error("not sent");
    return post(`/conversations/${id}/messages`, Object.assign({}, body, { confirm: true }));
  }
}

function whatsappWindow(c) {
  const last = [...(c.timeline || [])].reverse().find((m) => m.direction === "inbound");
  if (!last || last.channel_type !== "whatsapp") return null;
  // As the gateway counts it (core/window.c): from when the customer sent it, or received it if earlier.
  const at = Math.min(...[last.sent_at, last.received_at].filter(Boolean).map((t) => new Date(t).getTime()));
  const age = Date.now() - at;
  if (age < 24 * 3600 * 1000) return null;
  return h("p", { class: "warn", role: "note" },
           "The customer last wrote on WhatsApp over 24 hours ago: WhatsApp accepts only a template now.");
}

function updateCannedMenu(text, menu) {
  const v = text.value;
  if (!v.startsWith("/") || v.includes("\n") || !state.canned.length) {
    menu.hidden = true;
    return;
  }
  const q = v.slice(1).toLowerCase();
  const hits = state.canned.filter((c) => c.name.toLowerCase().includes(q) || c.template.toLowerCase().includes(q));
  menu.replaceChildren(...hits.map((c, i) => h("li", { role: "option", "data-name": c.name, "aria-selected": String(i === 0),
                                                      onmousedown: (e) => {
                                                        e.preventDefault();
                                                        pickCanned(c.name, text, menu, $("canned-picked"));
                                                      } },
                                               h("strong", {}, "/" + c.name), " ", h("span", { class: "muted" }, c.template))));
  menu.hidden = hits.length === 0;
}

function moveCanned(menu, by) {
  const items = [...menu.children];
  const at = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
  const next = (at + by + items.length) % items.length;
  items.forEach((li, i) => li.setAttribute("aria-selected", String(i === next)));
}

function pickCanned(name, text, menu, picked) {
  if (!state.canned.some((x) => x.name === name)) return;
  state.cannedPick = name;
  menu.hidden = true;
  text.value = "";
  showPicked(text, picked);
  text.focus();
}

// The chosen canned response above the box (again after a refresh rebuilt the box).
function showPicked(text, picked) {
  const name = state.cannedPick;
  const c = state.canned.find((x) => x.name === name);
  if (!c) return;
  picked.hidden = false;
  picked.replaceChildren(h("strong", {}, "Canned response /" + name + ": "), c.template,
                         h("span", { class: "muted" }, " (placeholders are filled when it is sent) "),
                         h("button", { type: "button", onclick: () => {
                           state.cannedPick = null;
                           picked.hidden = true;
                           text.focus();
                         } }, "Cancel"));
}

// ------------------------------------------------------------------ presence

// Every few seconds while a conversation is open: I am here (typing or not); who else is.
async function beat() {
  const id = state.currentId;
  if (!id || !state.me || $("app").hidden) return;
  try {
    const r = await post(`/conversations/${id}/presence`, { typing: state.typingUntil > Date.now() });
    if (id !== state.currentId) return;
    state.presence = r.viewers || [];
  } catch (e) {
    state.presence = [];
  }
  const el = $("presence");
  if (el) el.textContent = presenceText();
}

function presenceText() {
  const typing = state.presence.filter((p) => p.typing).map((p) => p.agent);
  const viewing = state.presence.filter((p) => !p.typing).map((p) => p.agent);
  const parts = [];
  if (typing.length) parts.push(`${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…`);
  if (viewing.length) parts.push(`${viewing.join(", ")} ${viewing.length > 1 ? "are" : "is"} viewing`);
  return parts.join(" · ");
}

setInterval(beat, 4000);

// ------------------------------------------------------------------ the contact panel

async function loadContact(contactId) {
  const panel = $("contact");
  if (!contactId) return;
  let ct;
  try {
    ct = (await get("/contacts/" + encodeURIComponent(contactId))).contact;
  } catch (e) {
    panel.replaceChildren(h("p", { class: "muted" }, "The contact could not be read."));
    return;
  }
  const attrs = Object.entries(ct.attributes || {});
  panel.replaceChildren(
    h("h2", {}, ct.name || "Customer"),
    h("p", { class: "muted small" }, "Contact " + ct.id),
    h("h3", {}, "Identities"),
    h("ul", { class: "identities" }, (ct.identities || []).map((i) => h("li", {}, i.urn,
                                                                           i.display_name ? h("span", { class: "muted" }, " " + i.display_name) : null))),
    h("h3", {}, "Attributes"),
    attrs.length ? h("dl", { class: "attrs" }, attrs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))]))
                 : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Conversations"),
    h("ul", { class: "past" }, (ct.conversations || []).map((c) => h("li", {},
      h("a", { href: "#/c/" + c.id }, when(c.created_at) || c.id), " ", h("span", { class: `badge st-${c.status}` }, c.status)))),
    state.me.role === "admin" ? mergeForm(ct) : "");
}

function mergeForm(ct) {
  const from = h("input", { id: "merge-from", size: 14, placeholder: "contact id", "aria-label": "Contact to merge into this one" });
  const undo = h("input", { id: "merge-undo", size: 14, placeholder: "merge id", "aria-label": "Merge to undo" });
  const reload = () => loadContact(ct.id).then(() => state.currentId && openConversation(state.currentId, true));
  const last = state.lastMerge && state.lastMerge.into === ct.id ? state.lastMerge : null;
  const unmerge = (id) => post("/contacts/unmerge", { merge_id: id }).then(() => {
    state.lastMerge = null;
    return reload();
  }).catch(failed);
  return h("div", { class: "merge" },
           h("h3", {}, "Merge (admin)"),
           h("div", {}, from, h("button", { type: "button", id: "merge", onclick: () =>
             post("/contacts/merge", { from: from.value.trim(), into: ct.id })
               .then((r) => {
                 state.lastMerge = { id: (r.merge || {}).id, into: ct.id };
                 return reload();
               }).catch(failed) },
           "Merge into this")),
           last ? h("p", { class: "small" }, `Merged (merge ${last.id}). `,
                    h("button", { type: "button", id: "merge-undo-last", onclick: () => unmerge(last.id) }, "Undo merge"))
                : "",
           h("div", {}, undo, h("button", { type: "button", onclick: () => unmerge(undo.value.trim()) }, "Unmerge")));
}

// ------------------------------------------------------------------ shortcuts

function shortcut(e) {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
  if (!state.me || $("app").hidden) return;
  if (e.key === "?") {
    e.preventDefault();
    $("help").showModal();
  } else if (e.key === "j" || e.key === "k") {
    const at = state.items.findIndex((c) => c.id === state.currentId);
    const next = state.items[Math.max(0, Math.min(state.items.length - 1, at + (e.key === "j" ? 1 : -1)))];
    if (next) {
      location.hash = "#/c/" + next.id;
      const li = $("conv-" + next.id);
      if (li) li.scrollIntoView({ block: "nearest" });
    }
  } else if (e.key === "r") {
    const box = $("reply-text");
    if (box) {
      e.preventDefault();
      box.focus();
    }
  } else if (e.key === "e") {
    const b = $("resolve");
    if (b) b.click();
  }
}

start();
