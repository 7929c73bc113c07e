// The header (connection state, last tick, a stale warning) and the bus-down banners.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, urls } = dash; // state.js
  const { $, ms, clock, fmtValue, fmtDuration, busLabel, setText, setTitle } = dash; // helpers.js

  // A snapshot older than three ticks (10 s at least) means the collector has stopped.
  const STALE_AFTER_MS = Math.max(3 * dash.TICK_S * 1000, 10000);

  const connectionLine = $("monitor-connection");
  const tickLine = $("monitor-tick");

  function setConnection(name, detail) {
    state.connection = name;
    connectionLine.dataset.state = name;
    if (name === "signed-out") {
      connectionLine.textContent = "signed out — ";
      const link = document.createElement("a");
      link.href = urls.login + "?next=" + encodeURIComponent(location.pathname + location.search);
      link.textContent = "log in again";
      connectionLine.appendChild(link);
    } else {
      setText(connectionLine, { live: "live", reconnecting: "reconnecting…", connecting: "connecting…" }[name] || name);
    }
    setTitle(connectionLine, detail || "");
  }

  function renderHeader() {
    const snap = state.snapshot;
    if (!snap) return;
    let text = "tick " + snap.tick + " · " + clock(ms(snap.at)) + " · collected in " + fmtValue(snap.tick_ms) + " ms";
    const age = Date.now() - state.lastFrameAt;
    const stale = age > STALE_AFTER_MS;
    if (stale) text += " · no new snapshot for " + fmtDuration(age / 1000);
    setText(tickLine, text);
    tickLine.classList.toggle("stale", stale);
  }

  function renderBanners() {
    const box = $("monitor-banners");
    const down = (state.snapshot.buses || []).filter(function (b) {
      return !b.up;
    });
    const keep = new Set();
    down.forEach(function (bus) {
      const kind = String(bus.kind);
      keep.add(kind);
      let p = box.querySelector('[data-bus="' + CSS.escape(kind) + '"]');
      if (!p) {
        p = document.createElement("p");
        p.className = "banner-down";
        p.setAttribute("role", "alert");
        p.dataset.bus = kind;
        box.appendChild(p);
      }
      // Written only when it changes, so screen readers announce it once.
      setText(p, busLabel(kind) + " bus is down: " + (bus.error || "it does not answer"));
    });
    Array.prototype.forEach.call(box.querySelectorAll("[data-bus]"), function (p) {
      if (!keep.has(p.dataset.bus)) p.remove();
    });
    const problem = $("monitor-snapshot-problem");
    if (problem) problem.remove();
  }

  Object.assign(dash, { setConnection, renderHeader, renderBanners });
})(window.EventHubDashboard);
