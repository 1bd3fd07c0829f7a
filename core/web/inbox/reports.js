// reports.js: the reports page (#/reports): the KPIs of a period per channel, team or agent, as
// GET /api/v1/reports/kpis answers them (docs/kpis.md), formatted as `parley stats` prints them.
// Admins only: the op reads every team's figures; an agent is told so and no table is drawn.
import { get, query } from "./api.js";

// printf's "%.1f" of a double: the nearest tenth, and at an exact tie (2.25: a quarter) the even one, as
// C rounds (toFixed rounds such ties up: 2.3).
export function fixed1(v) {
  const a = Math.abs(v);
  if (!/\.\d50*$/.test(a.toFixed(20))) return v.toFixed(1);
  const tenths = Math.floor(a * 10); // exact: a is a multiple of 1/4
  return (v < 0 ? "-" : "") + ((tenths % 2 ? tenths + 1 : tenths) / 10).toFixed(1);
}

// A duration in ms as `parley stats` prints it (core/cli_stats.c): 1h02m03s, 2m03s, 4.5s; negative
// (an SLA gap: early) with a minus sign.
export function duration(ms) {
  if (typeof ms !== "number") return "—";
  if (ms < 0) return "-" + duration(-ms);
  const s = Math.trunc(ms / 1000);
  const two = (n) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.trunc(s / 3600)}h${two(Math.trunc(s / 60) % 60)}m${two(s % 60)}s`;
  if (s >= 60) return `${Math.trunc(s / 60)}m${two(s % 60)}s`;
  return fixed1(ms / 1000) + "s";
}

export const percent = (v) => (typeof v === "number" ? fixed1(v) + "%" : "—");
const score = (v) => (typeof v === "number" ? fixed1(v) : "—");
const count = (v) => (typeof v === "number" ? String(v) : "—");
const at = (f, a, b) => (f && f[a] ? f[a][b] : undefined);

const SLA = [["first_response", "first response"], ["next_response", "next response"], ["resolution", "resolution"]];

// The table's columns for a reply: [id, group heading ("": none), heading, value of a group's figures].  Business time when the
// gateway has business hours; an SLA target's gap when any row has one.
function columns(r) {
  const cols = [
    ["opened", "", "Conversations", (f) => count(f.conversations_opened)],
    ["frt_median", "First response", "median", (f) => duration(at(f, "first_response", "median_ms"))],
    ["frt_p90", "First response", "p90", (f) => duration(at(f, "first_response", "p90_ms"))],
  ];
  if (r.business_hours)
    cols.push(["frt_bmedian", "First response", "median, business", (f) => duration(at(f, "first_response", "business_median_ms"))],
              ["frt_bp90", "First response", "p90, business", (f) => duration(at(f, "first_response", "business_p90_ms"))]);
  cols.push(["ttr_median", "Resolution", "median", (f) => duration(at(f, "resolution", "median_ms"))],
            ["ttr_p90", "Resolution", "p90", (f) => duration(at(f, "resolution", "p90_ms"))]);
  if (r.business_hours)
    cols.push(["ttr_bmedian", "Resolution", "median, business", (f) => duration(at(f, "resolution", "business_median_ms"))],
              ["ttr_bp90", "Resolution", "p90, business", (f) => duration(at(f, "resolution", "business_p90_ms"))]);
  cols.push(["fcr", "", "First-contact resolution", (f) => percent(at(f, "fcr", "rate"))],
            ["reopen", "", "Reopen rate", (f) => percent(at(f, "resolutions", "reopen_rate"))],
            ["csat", "", "CSAT", (f) => percent(at(f, "csat", "score"))],
            ["nps", "", "NPS", (f) => score(at(f, "nps", "score"))],
            ["bot", "", "Bot containment", (f) => percent(at(f, "bot", "containment_rate"))],
            ["queue_median", "Time in queue", "median", (f) => duration(at(f, "queue", "median_ms"))],
            ["queue_p90", "Time in queue", "p90", (f) => duration(at(f, "queue", "p90_ms"))]);
  const rows = [...(r.groups || []), r.total || {}];
  for (const [t, label] of SLA) {
    if (!rows.some((f) => f.sla && f.sla[t])) continue;
    cols.push([`sla_${t}_gap`, `SLA ${label}`, "gap (median)", (f) => duration(f.sla && f.sla[t] ? f.sla[t].median_gap_ms : null)],
              [`sla_${t}_breached`, `SLA ${label}`, "breached", (f) => percent(f.sla && f.sla[t] ? f.sla[t].breached_pct : null)]);
  }
  return cols;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

// YYYY-MM-DD of a UTC date: the API's dates are midnight UTC.
function day(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

let ready = false;
let seq = 0;

// The page is shown: the form the first time (this month, by channel), then the figures.
export function showReports(me, h) {
  const $ = (id) => document.getElementById(id);
  const admin = me && me.role === "admin";
  $("reports-note").hidden = admin;
  $("reports-form").hidden = !admin;
  if (!admin) {
    adminOnly(h);
    return;
  }
  if (!ready) {
    ready = true;
    const now = new Date();
    $("r-from").value = day(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
    $("r-to").value = day(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)));
    $("reports-form").addEventListener("submit", (e) => {
      e.preventDefault();
      load(h);
    });
    $("r-by").addEventListener("change", () => load(h));
  }
  load(h);
}

function adminOnly(h) {
  const $ = (id) => document.getElementById(id);
  $("reports-note").hidden = false;
  $("reports-note").textContent = "Reports are for admins: they show every team's figures. Ask an admin for them.";
  $("reports-form").hidden = true;
  $("reports-status").textContent = "";
  $("reports-out").replaceChildren();
}

async function load(h) {
  const $ = (id) => document.getElementById(id);
  const from = $("r-from").value, to = $("r-to").value, by = $("r-by").value;
  const out = $("reports-out");
  const status = $("reports-status");
  status.classList.remove("error");
  if (!from || !to || from >= to) {
    status.classList.add("error");
    status.textContent = "Choose a period: the start before the end.";
    out.replaceChildren();
    return;
  }
  const mine = ++seq;
  status.textContent = "Loading…";
  out.setAttribute("aria-busy", "true");
  let r;
  try {
    r = await get("/reports/kpis" + query({ from, to, by }));
  } catch (e) {
    if (mine !== seq) return;
    out.removeAttribute("aria-busy");
    if (e.status === 403) return adminOnly(h);
    status.classList.add("error");
    status.textContent = e.status === 401 ? "Your session has ended: sign in again."
                                          : `The reports could not be read: ${e.message}`;
    out.replaceChildren();
    return;
  }
  if (mine !== seq) return;
  out.removeAttribute("aria-busy");
  status.textContent = `From ${from} to ${to} (not included), by ${by}.`;
  render(r, by, h);
}

function render(r, by, h) {
  const out = document.getElementById("reports-out");
  const cols = columns(r);
  const groups = r.groups || [];
  const row = (label, f, cls) => h("tr", { class: cls, "data-key": label },
                                   h("th", { scope: "row" }, label),
                                   cols.map(([id, , , v]) => h("td", { "data-col": id }, v(f || {}))));
  const table = h("table", { id: "kpi-table", class: "kpis", "data-period": `${r.from}/${r.to}/${r.by}` },
                  h("caption", {}, `KPIs by ${by}`),
                  heading(cols, by, h),
                  h("tbody", {}, groups.map((g) => row(g.key === null || g.key === undefined ? "(none)" : g.key, g))),
                  h("tfoot", {}, row("Total", r.total, "total")));
  const opened = (r.total && r.total.conversations_opened) || 0;
  out.replaceChildren(opened || groups.length ? h("div", { class: "kpi-scroll", tabindex: "0", role: "region",
                                                            "aria-label": "KPI table" }, table)
                                              : h("p", { class: "muted", id: "reports-empty" }, "No conversations in this period."),
                      opened ? chart(groups, h) : "");
}

// Two header rows: a group's heading over its columns (First response: median, p90, ...), a lone
// column's heading over both rows.
function heading(cols, by, h) {
  const top = [h("th", { scope: "col", rowspan: 2 }, by[0].toUpperCase() + by.slice(1))];
  const sub = [];
  for (let i = 0; i < cols.length;) {
    const group = cols[i][1];
    let n = 1;
    while (group && i + n < cols.length && cols[i + n][1] === group) n++;
    if (!group) top.push(h("th", { scope: "col", rowspan: 2, "data-col": cols[i][0] }, cols[i][2]));
    else {
      top.push(h("th", { scope: "colgroup", colspan: n, class: "group" }, group));
      for (const c of cols.slice(i, i + n)) sub.push(h("th", { scope: "col", "data-col": c[0] }, c[2]));
    }
    i += n;
  }
  return h("thead", {}, h("tr", {}, top), h("tr", { class: "sub" }, sub));
}

// Conversations opened per group, as bars (drawn only when there are some).
function chart(groups, h) {
  const NS = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const rows = groups.filter((g) => g.conversations_opened > 0);
  const max = Math.max(1, ...rows.map((g) => g.conversations_opened));
  const W = 480, LABEL = 120, BAR = 22;
  const svg = s("svg", { width: W, height: rows.length * (BAR + 6) + 4, role: "img", class: "kpi-chart",
                         "aria-label": "Conversations opened per group: " +
                           rows.map((g) => `${g.key === null ? "(none)" : g.key} ${g.conversations_opened}`).join(", ") });
  rows.forEach((g, i) => {
    const y = i * (BAR + 6) + 2;
    const w = Math.max(2, ((W - LABEL - 40) * g.conversations_opened) / max);
    svg.append(s("text", { x: LABEL - 8, y: y + BAR / 2 + 5, "text-anchor": "end" }, g.key === null ? "(none)" : g.key),
               s("rect", { x: LABEL, y, width: w, height: BAR, rx: 3, class: "bar" }),
               s("text", { x: LABEL + w + 6, y: y + BAR / 2 + 5 }, String(g.conversations_opened)));
  });
  return h("figure", { class: "kpi-figure" }, h("figcaption", {}, "Conversations opened"), svg);
}
