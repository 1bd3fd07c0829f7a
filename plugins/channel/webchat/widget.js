/*
 * widget.js: Parley's web chat widget, served at /webchat/<channel>/widget.js.
 * Embed it with one tag:  <script src="https://gateway.example/webchat/site/widget.js" async></script>
 * Optional attributes: data-identity-token="<token signed by your backend>".
 * Plain JavaScript, no framework, nothing fetched from elsewhere.  Every text
 * from a visitor or an agent is shown with textContent, never as HTML.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var wsUrl = base.replace(/^http/, "ws") + "/ws";
  var storeKey = "parley-webchat:" + base;
  var identityToken = script.getAttribute("data-identity-token") || null;

  var state = load();
  var ws = null, ready = false, retry = 0, seen = {}, outbox = [], settings = { title: "Chat", prechat: false, max_message: 4096 };

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode: the session lasts the page */ }
  }
  function randomId() {
    var a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* ---- the window, in a shadow root so the page's CSS and ours do not mix */
  var host = document.createElement("div");
  host.id = "parley-webchat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = document.createElement("style");
  style.textContent =
    ".btn{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:28px;border:0;background:#2463eb;color:#fff;font:24px sans-serif;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483646}" +
    ".win{position:fixed;right:20px;bottom:88px;width:340px;height:460px;max-height:80vh;background:#fff;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.25);display:none;flex-direction:column;font:14px/1.4 system-ui,sans-serif;color:#111;z-index:2147483647;overflow:hidden}" +
    ".win.open{display:flex}.head{background:#2463eb;color:#fff;padding:12px 14px;font-weight:600}" +
    ".list{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;background:#f5f6f8}" +
    ".msg{max-width:80%;padding:7px 10px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".inbound{align-self:flex-end;background:#2463eb;color:#fff}.outbound{align-self:flex-start;background:#fff;border:1px solid #dde}" +
    ".pending{opacity:.6}.failed{background:#b91c1c}.note{align-self:center;color:#666;font-size:12px}" +
    ".form{display:flex;border-top:1px solid #dde}.form textarea{flex:1;border:0;padding:10px;font:inherit;resize:none;height:42px}" +
    ".form button{border:0;background:#2463eb;color:#fff;padding:0 14px;cursor:pointer}.form .attach{background:#fff;color:#2463eb;font-size:20px;padding:0 10px}" +
    ".pre{padding:12px;display:flex;flex-direction:column;gap:8px}.pre input{padding:8px;border:1px solid #ccd;border-radius:6px}";
  root.appendChild(style);
  var btn = el("button", "btn");
  var svgNs = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNs, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "26");
  icon.setAttribute("height", "26");
  var bubble = document.createElementNS(svgNs, "path");
  bubble.setAttribute("fill", "#fff");
  bubble.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  icon.appendChild(bubble);
  btn.appendChild(icon);
  btn.setAttribute("aria-label", "Open the chat");
  var win = el("div", "win");
  var head = el("div", "head", settings.title);
  var list = el("div", "list");
  var form = el("form", "form");
  var input = el("textarea");
  input.setAttribute("aria-label", "Message");
  input.placeholder = "Write a message";
  var send = el("button", null, "Send");
  send.type = "submit";
  var attach = el("button", "attach", "+");
  attach.type = "button";
  attach.setAttribute("aria-label", "Attach a file");
  var file = el("input");
  file.type = "file";
  file.style.display = "none";
  form.appendChild(attach);
  form.appendChild(file);
  form.appendChild(input);
  form.appendChild(send);
  win.appendChild(head);
  win.appendChild(list);
  win.appendChild(form);
  root.appendChild(btn);
  root.appendChild(win);
  (document.body || document.documentElement).appendChild(host);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function note(text) {
    list.appendChild(el("div", "msg note", text));
    list.scrollTop = list.scrollHeight;
  }
  /* One message bubble: key is the gateway id, or the client id until the ack. */
  function show(direction, text, id, clientId, pending) {
    if (id && seen[id]) return seen[id];
    var b = clientId && seen["c:" + clientId];
    if (!b) {
      b = el("div", "msg " + direction);
      b.textContent = text;
      list.appendChild(b);
    }
    if (clientId) seen["c:" + clientId] = b;
    if (id) { seen[id] = b; b.setAttribute("data-id", id); }
    b.classList.toggle("pending", !!pending);
    list.scrollTop = list.scrollHeight;
    return b;
  }

  btn.addEventListener("click", function () {
    win.classList.toggle("open");
    if (win.classList.contains("open")) { start(); input.focus(); }
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); submit(); }
  });

  attach.addEventListener("click", function () { if (state.token) file.click(); });
  file.addEventListener("change", function () {
    var f = file.files && file.files[0];
    file.value = "";
    if (!f || !state.token) return;
    var clientId = randomId();
    var b = show("inbound", label({ name: f.name }), null, clientId, true);
    fetch(base + "/attachments?name=" + encodeURIComponent(f.name) + "&client_id=" + clientId, {
      method: "POST",
      headers: { Authorization: "Bearer " + state.token, "Content-Type": f.type || "application/octet-stream" },
      body: f
    })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, j: j }; }); })
      .then(function (r) {
        if (r.status === 200) { show("inbound", "", r.j.id, clientId, false); return; }
        b.classList.add("failed");
        note(r.status === 413 ? "That file is too large." : (r.j.error || "The file was not sent."));
      })
      .catch(function () { b.classList.add("failed"); note("The file was not sent."); });
  });
  function label(a) { return "File: " + (a.name || "attachment"); }

  function submit() {
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    if (new TextEncoder().encode(text).length > settings.max_message) { note("That message is too long."); return; }
    input.value = "";
    var m = { type: "message", text: text, client_id: randomId() };
    show("inbound", text, null, m.client_id, true);
    if (ws && ready) ws.send(JSON.stringify(m));
    else outbox.push(m);
  }

  /* ---- session, socket, history */
  var started = false;
  function start() {
    if (started) return;
    started = true;
    var wanted = identityToken || null;
    if (state.token && state.identity === wanted) { connect(); return; }
    fetch(base + "/settings")
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.title) head.textContent = j.title;
        if (j.prechat) prechat();
        else newSession(null);
      })
      .catch(function () { note("The chat is not reachable right now."); started = false; });
  }
  /* Name and e-mail before the chat: kept as the visitor typed them, unverified. */
  function prechat() {
    var f = el("form", "pre");
    var name = el("input");
    name.placeholder = "Your name";
    name.name = "name";
    var email = el("input");
    email.placeholder = "E-mail (optional)";
    email.type = "email";
    email.name = "email";
    var go = el("button", null, "Start the chat");
    go.type = "submit";
    f.appendChild(name);
    f.appendChild(email);
    f.appendChild(go);
    list.appendChild(f);
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      list.removeChild(f);
      newSession({ name: name.value.trim() || null, email: email.value.trim() || null });
    });
  }
  function newSession(fields) {
    var body = fields || {};
    if (identityToken) body.identity_token = identityToken;
    fetch(base + "/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (r) {
        if (!r.ok) { note("The chat is not available: " + (r.j.error || "error")); return; }
        state = { token: r.j.token, identity: identityToken || null, settings: r.j };
        save();
        connect();
      })
      .catch(function () { note("The chat is not reachable right now."); started = false; });
  }
  function applySettings() {
    var s = state.settings || {};
    if (s.title) head.textContent = s.title;
    if (s.max_message) settings.max_message = s.max_message;
  }
  function connect() {
    applySettings();
    ready = false;
    ws = new WebSocket(wsUrl);
    ws.onopen = function () { ws.send(JSON.stringify({ type: "auth", token: state.token })); };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "ready") {
        ready = true;
        retry = 0;
        history();
        while (outbox.length) ws.send(JSON.stringify(outbox.shift()));
      } else if (m.type === "ack") {
        show("inbound", "", m.id, m.client_id, false);
      } else if (m.type === "message") {
        show(m.direction === "outbound" ? "outbound" : "inbound", m.attachment ? label(m.attachment) : m.text, m.id,
             m.client_id, false);
      } else if (m.type === "error") {
        if (m.code === "bad_token") { state = {}; save(); started = false; ws.onclose = null; start(); return; }
        var b = m.client_id && seen["c:" + m.client_id];
        if (b) b.classList.add("failed");
        note(m.message || "The message was not sent.");
      }
    };
    ws.onclose = function () {
      ready = false;
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    };
  }
  function history() {
    fetch(base + "/messages", { headers: { Authorization: "Bearer " + state.token } })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        (j.messages || []).forEach(function (m) {
          show(m.direction === "outbound" ? "outbound" : "inbound", m.attachment ? label(m.attachment) : m.text, m.id,
               null, false);
        });
      })
      .catch(function () { /* the live socket still works */ });
  }

  if (state.token) start(); /* a returning visitor sees the conversation at once */
})();
