// The topic browser's topic page (templates/eventstore/browse_topic.html).
// A scan asks the API (/api/v1/bus/<bus>/topics/<topic>/messages) in steps of STEP records,
// going on with each answer's `next` cursor, so the page can show "scanned 120,000 of
// 1,000,000" while a filter works and a Stop button can end it. The live tail is a websocket
// (/ws/browse/, eventstore/consumers.py): the server reads the topic once for every tab and
// sends each tab what its filters let through. Text goes in with textContent, never as HTML.
(function () {
  "use strict";

  const root = document.getElementById("browse-topic");
  if (!root) return;

  const STEP = 20000; // records scanned per request while a filter looks for matches
  const form = document.getElementById("browse-filters");
  const body = document.querySelector("#browse-results tbody");
  const progress = document.getElementById("browse-progress");
  const errorLine = document.getElementById("browse-error");
  const stopButton = document.getElementById("browse-stop");
  const tailButton = document.getElementById("browse-tail");
  const pauseButton = document.getElementById("browse-pause");
  const tailState = document.getElementById("browse-tail-state");
  const detailTemplate = document.getElementById("browse-row-detail");
  let scanId = 0; // a new scan (or Stop) makes the running one give up at its next step

  function split(text) {
    return text.split(/[;\n]/).map((s) => s.trim()).filter(Boolean);
  }

  // The form as query parameters (repeatable header= and field=); the start choice picks one of three.
  function filterParams() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    const start = data.get("start");
    if (start === "from_offset" && data.get("from_offset")) params.set("from_offset", data.get("from_offset").trim());
    if (start === "from_time" && data.get("from_time")) params.set("from_time", data.get("from_time").trim());
    for (const name of ["partition", "key", "type", "q"]) {
      const value = (data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    for (const name of ["header", "field"]) split(data.get(name) || "").forEach((v) => params.append(name, v));
    return params;
  }

  function number(name, fallback, max) {
    const value = parseInt(new FormData(form).get(name), 10);
    return Number.isFinite(value) && value > 0 ? Math.min(value, max) : fallback;
  }

  function showError(text) {
    errorLine.hidden = !text;
    errorLine.textContent = text || "";
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function link(parent, href, text, className) {
    if (!href) return;
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    a.className = className;
    parent.appendChild(a);
    parent.appendChild(document.createTextNode(" "));
  }

  function validBadge(message) {
    if (message.valid === true) return ["valid", "status status-OK"];
    if (message.valid === false) return ["invalid", "status status-STALL"];
    return ["no schema", "status status-unknown"];
  }

  function payloadText(message) {
    if (message.payload_encoding === "json") return JSON.stringify(message.payload, null, 2);
    return message.payload == null ? "" : String(message.payload);
  }

  function detailRow(message) {
    const row = detailTemplate.content.firstElementChild.cloneNode(true);
    const headers = row.querySelector(".browse-headers tbody");
    for (const header of message.headers) {
      const tr = document.createElement("tr");
      cell(tr, header.name);
      cell(tr, header.value);
      cell(tr, header.encoding === "base64" ? "base64" : "");
      headers.appendChild(tr);
    }
    const notes = [];
    if (message.payload_encoding && message.payload_encoding !== "json") notes.push(message.payload_encoding);
    if (message.truncated) notes.push("only the first 64 KiB of " + message.size + " bytes");
    if (message.masked.length) notes.push("masked: " + message.masked.join(", "));
    if (message.error) notes.push("schema v" + message.schema_version + ": " + message.error);
    row.querySelector(".browse-note").textContent = notes.join(" · ");
    row.querySelector(".browse-payload").textContent = payloadText(message);
    return row;
  }

  // One result row; a click opens (or closes) the row below it with headers and payload.
  function addRow(message, where) {
    const row = document.createElement("tr");
    row.className = "browse-row";
    row.tabIndex = 0;
    cell(row, message.partition);
    cell(row, message.offset, "browse-offset");
    cell(row, message.timestamp ? message.timestamp.replace("T", " ").replace("Z", "") : "");
    cell(row, message.key_encoding === "base64" ? "(base64) " + message.key : message.key, "browse-key");
    cell(row, message.type, "browse-type");
    const [label, badge] = validBadge(message);
    const valid = cell(row, "");
    const span = document.createElement("span");
    span.className = badge + " browse-valid";
    span.textContent = label;
    if (message.error) span.title = message.error;
    valid.appendChild(span);
    cell(row, message.size);
    const links = cell(row, "");
    link(links, message.trace_url, "trace", "browse-trace");
    link(links, message.event_url, "event", "browse-event");
    let detail = null;
    function toggle(event) {
      if (event.target.closest("a")) return;
      if (detail) {
        detail.remove();
        detail = null;
      } else {
        detail = detailRow(message);
        row.after(detail);
      }
    }
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") toggle(event);
    });
    if (where === "top") body.prepend(row);
    else body.appendChild(row);
  }

  async function scan() {
    const id = ++scanId;
    body.replaceChildren();
    showError("");
    const budget = number("budget", 100000, parseInt(root.dataset.maxBudget, 10));
    const limit = number("limit", 50, 500);
    const base = filterParams();
    let scanned = 0;
    let matched = 0;
    let cursor = null;
    stopButton.hidden = false;
    root.dataset.scanning = "true";
    try {
      while (id === scanId) {
        const params = new URLSearchParams(base);
        params.set("budget", String(Math.min(STEP, budget - scanned)));
        params.set("limit", String(limit - matched));
        if (cursor) params.set("cursor", cursor);
        const response = await fetch(root.dataset.apiUrl + "?" + params, { headers: { Accept: "application/json" } });
        const answer = await response.json().catch(() => ({}));
        if (id !== scanId) return;
        if (!response.ok) {
          const detail = Object.entries(answer).map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ");
          showError(detail || "The scan failed (" + response.status + ").");
          break;
        }
        scanned += answer.scanned;
        matched += answer.matched;
        answer.messages.forEach((m) => addRow(m, "bottom"));
        cursor = answer.next;
        const done = !cursor || matched >= limit || scanned >= budget;
        progress.textContent =
          "scanned " + scanned.toLocaleString("en") + " of " + budget.toLocaleString("en") +
          ", " + matched.toLocaleString("en") + " matched" + (done ? (cursor ? "" : " · end of the topic") : "…");
        if (done) break;
      }
    } catch (error) {
      showError("The scan failed: " + error);
    } finally {
      if (id === scanId) {
        stopButton.hidden = true;
        root.dataset.scanning = "false";
      }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // The scan's address: reloaded or shared, it scans the same way.
    history.replaceState(null, "", "?" + new URLSearchParams(new FormData(form)));
    scan();
  });
  stopButton.addEventListener("click", () => {
    scanId++;
    stopButton.hidden = true;
    root.dataset.scanning = "false";
    progress.textContent += " · stopped";
  });

  // ---- the live tail --------------------------------------------------------------------
  let socket = null;
  let paused = false;

  function tailFilters() {
    const params = filterParams();
    const filters = {};
    for (const name of ["key", "type", "q"]) if (params.get(name)) filters[name] = params.get(name);
    for (const name of ["header", "field"]) filters[name] = params.getAll(name);
    return filters;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function startTail() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.tailPath);
    body.replaceChildren();
    tailState.hidden = false;
    tailState.textContent = "connecting…";
    socket.addEventListener("open", () => {
      send({ type: "subscribe", bus: root.dataset.bus, topic: root.dataset.topic, filters: tailFilters() });
    });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "tail.state") {
        tailState.textContent = data.state + (data.skipped ? " · skipped " + data.skipped : "");
      } else if (data.type === "tail.messages") {
        data.messages.forEach((m) => addRow(m, "top"));
        while (body.children.length > 500) body.lastElementChild.remove();
        if (data.skipped) tailState.textContent = "live · skipped " + data.skipped;
      } else if (data.type === "tail.error") {
        showError(data.detail);
      }
    });
    socket.addEventListener("close", () => {
      tailState.textContent = "tail stopped";
      tailButton.textContent = "Live tail";
      pauseButton.hidden = true;
      socket = null;
    });
    tailButton.textContent = "Stop tail";
    pauseButton.hidden = false;
    pauseButton.textContent = "Pause";
    paused = false;
  }

  tailButton.addEventListener("click", () => {
    if (socket) socket.close();
    else startTail();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    send({ type: paused ? "pause" : "resume" });
    pauseButton.textContent = paused ? "Resume" : "Pause";
  });
  // Changing a filter while tailing applies it at once, on the server, to this tab only.
  form.addEventListener("change", () => send({ type: "filters", filters: tailFilters() }));

  // An address with filters (a shared scan, or Scan pressed before this script ran, which
  // submits the form as a plain GET) fills the form and scans.
  const asked = new URLSearchParams(location.search);
  let filled = false;
  for (const [name, value] of asked) {
    const field = form.elements.namedItem(name);
    if (field && "value" in field) {
      field.value = value;
      filled = true;
    }
  }
  if (filled) scan();
})();
