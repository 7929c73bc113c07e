// The /ws/monitor/ connection: the whole view once, then per tick what changed (a delta,
// delta.js); a missed delta asks for the whole view again ("refresh"). The socket shows
// the chosen domain and one page of the groups table only ("subscribe"). Reconnects with
// backoff and jitter, and while it is down, the latest snapshot over HTTP (which also
// tells when the session has expired).
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, urls } = dash; // state.js
  const { ms, fetchJson } = dash; // helpers.js
  const { setConnection } = dash; // banners.js
  const { apply } = dash; // apply.js
  const { patch } = dash; // delta.js

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  let socket = null;
  let attempt = 0;
  let retryTimer = 0;
  let signedOut = false;
  let refreshAskedAt = 0; // when we last asked for the whole view after a missed delta
  const REFRESH_AGAIN_MS = 2000;

  // The server sends the chosen domain's rows and one page of the groups table only.
  function socketUrl() {
    const query = new URLSearchParams({ groups_page: String(state.groupPage) });
    if (state.groupFilter) query.set("groups_filter", state.groupFilter);
    if (state.domain) query.set("domain", state.domain);
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + urls.socket + "?" + query;
  }

  function connect() {
    retryTimer = 0;
    if (socket || signedOut) return;
    setConnection(attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (err) {
      reconnectSoon();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      attempt = 0;
      setConnection("live");
    };
    ws.onmessage = function (event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (!message) return;
      if (message.type === "snapshot") {
        state.socketFrames += 1;
        state.viewAsked = false; // the answer to a "subscribe" is a whole view
        refreshAskedAt = 0;
        apply(message.snapshot);
      } else if (message.type === "delta") {
        state.socketFrames += 1;
        state.deltas += 1;
        const snap = state.snapshot;
        if (snap && typeof snap.tick === "number" && message.tick <= snap.tick) return; // already shown
        const next = patch(snap, message);
        if (next) apply(next);
        else askForWholeView(ws);
      }
    };
    ws.onclose = function () {
      if (socket === ws) socket = null;
      reconnectSoon();
    };
    // onerror is always followed by onclose, which does the work.
  }

  function askForWholeView(ws) {
    if (refreshAskedAt && Date.now() - refreshAskedAt < REFRESH_AGAIN_MS) return;
    refreshAskedAt = Date.now();
    state.refreshes += 1;
    ws.send(JSON.stringify({ type: "refresh" }));
  }

  // The domain, the groups table's page and its filter changed: ask for that view.
  function subscribe() {
    if (socket && socket.readyState === WebSocket.OPEN) {
      state.viewAsked = true;
      const groups = { page: state.groupPage, filter: state.groupFilter };
      socket.send(JSON.stringify({ type: "subscribe", domain: state.domain || "", groups: groups }));
    }
  }

  function reconnectSoon(delayMs) {
    if (signedOut || socket) return;
    if (retryTimer) clearTimeout(retryTimer);
    attempt += 1;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt - 1));
    const delay = delayMs !== undefined ? delayMs : Math.round(backoff * (0.75 + Math.random() * 0.5));
    setConnection("reconnecting", "next attempt in " + Math.ceil(delay / 1000) + " s");
    retryTimer = setTimeout(connect, delay);
    readSnapshotOnce();
  }

  // While the socket is down: the latest snapshot over HTTP, and whether we are still logged in.
  function readSnapshotOnce() {
    if (!urls.snapshot) return;
    fetchJson(urls.snapshot)
      .then(function (snap) {
        if (!socket && snap && ms(snap.at) > state.lastRecorded) apply(snap);
      })
      .catch(function (err) {
        if (err && (err.status === 401 || err.status === 403)) {
          signedOut = true;
          if (retryTimer) clearTimeout(retryTimer);
          if (socket) socket.close();
          setConnection("signed-out");
        }
      });
  }

  window.addEventListener("online", function () {
    if (!socket) reconnectSoon(0);
  });

  // A tab shown again does not wait out the backoff: reconnect at once.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !socket) reconnectSoon(0);
  });

  function currentSocket() {
    return socket;
  }

  Object.assign(dash, { connect, currentSocket, subscribe });
})(window.EventHubDashboard);
