// api.js: the gateway's HTTP API as the inbox uses it (same origin, the HttpOnly session cookie).
//
// Every call goes through request(): a 401 (the session expired or was revoked) calls the
// handler set with onUnauthorized() and then fails, so the page shows the login without
// losing what the agent was doing.

let unauthorized = () => {};

export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, init);
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.status === 401 && path !== "/login") unauthorized();
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || (typeof err === "string" ? err : ""), err.message || "");
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => request("PATCH", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

// Live events: /api/v1/events is Server-Sent Events whose event names are the topics
// (message.inbound.whatsapp.wa-main, conversation.resolved, ...).  EventSource delivers a
// named event only to a listener of that exact name, and the names include the channels,
// so the stream is read with fetch(): every event reaches onEvent(topic, data).  A broken
// stream is opened again after a pause with Last-Event-ID, so nothing is missed or repeated.
export function liveEvents(onEvent, onState) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const res = await fetch("/api/v1/events", { credentials: "same-origin", headers, signal: controller.signal });
        if (res.status === 401) {
          unauthorized();
          onState(false);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
        onState(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const ev = { id: null, event: "message", data: "" };
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "id") ev.id = val;
              else if (field === "event") ev.event = val;
              else if (field === "data") ev.data += (ev.data ? "\n" : "") + val;
            }
            if (ev.id) lastId = ev.id;
            if (!ev.data) continue;
            let data = null;
            try {
              data = JSON.parse(ev.data);
            } catch (e) {
              continue;
            }
            onEvent(ev.event, data);
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
