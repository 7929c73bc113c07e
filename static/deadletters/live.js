// Shared by the dead-letter pages (list, detail, job): the /ws/dead-letters/ socket and
// the swapping of server-rendered partials.
//
// - `connect(options)` opens the socket and keeps it open: it reconnects with exponential
//   backoff and jitter. Channels refuses an anonymous handshake before accepting it, which a
//   browser only sees as an abnormal close, so after a failed attempt the page asks the
//   server (`probeUrl`) whether the session is still valid; a redirect to the login page
//   means it expired, and the page says so instead of retrying forever.
// - `fetchFragment(url)` GETs a partial and parses it into a DocumentFragment. Partials are
//   rendered and escaped by Django templates; nothing here builds HTML from strings.
// - `swapById(fragment)` replaces each top-level element of a fragment with the element of
//   the same id on the page.
(function () {
  "use strict";

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  function setLive(element, state, text) {
    if (!element) return;
    element.dataset.state = state;
    element.textContent = text;
  }

  function SignedOut(loginUrl) {
    this.loginUrl = loginUrl;
  }

  async function fetchFragment(url, loginUrl) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (response.redirected && loginUrl && new URL(response.url).pathname === loginUrl) {
      throw new SignedOut(loginUrl);
    }
    if (!response.ok) throw new Error("HTTP " + response.status + " from " + url);
    const template = document.createElement("template");
    template.innerHTML = await response.text(); // a server-rendered, escaped partial
    return template.content;
  }

  function swapById(fragment) {
    for (const element of Array.from(fragment.children)) {
      if (!element.id) continue;
      const current = document.getElementById(element.id);
      if (current) current.replaceWith(element);
    }
  }

  // options: {url, liveElement, probeUrl, loginUrl, onFrame(frame), onOpen(reconnected)}
  function connect(options) {
    let attempt = 0;
    let everOpen = false;
    let socket = null;
    let stopped = false;

    function socketUrl() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return scheme + "//" + window.location.host + options.url;
    }

    function signedOut() {
      stopped = true;
      const element = options.liveElement;
      if (!element) return;
      element.dataset.state = "down";
      element.textContent = "signed out — ";
      const link = document.createElement("a");
      link.href = options.loginUrl + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
      link.textContent = "log in again";
      element.appendChild(link);
    }

    async function probe() {
      if (!options.probeUrl) return true;
      try {
        await fetchFragment(options.probeUrl, options.loginUrl);
        return true;
      } catch (error) {
        if (error instanceof SignedOut) {
          signedOut();
          return false;
        }
        return true; // the server is down or busy: keep trying
      }
    }

    function open() {
      if (stopped) return;
      setLive(options.liveElement, "connecting", attempt ? "reconnecting…" : "connecting…");
      let ws;
      try {
        ws = new WebSocket(socketUrl());
      } catch (error) {
        retry();
        return;
      }
      socket = ws;
      ws.onopen = function () {
        const reconnected = everOpen;
        attempt = 0;
        everOpen = true;
        setLive(options.liveElement, "live", "live");
        // Frames sent before this socket was open (between the page's render and now, or
        // while it was down) are lost: the page catches up once.
        if (options.onOpen) options.onOpen(reconnected);
      };
      ws.onmessage = function (event) {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (frame && typeof frame.type === "string") options.onFrame(frame);
      };
      ws.onclose = function () {
        if (socket === ws) socket = null;
        retry();
      };
    }

    async function retry() {
      if (stopped) return;
      setLive(options.liveElement, "down", "reconnecting…");
      attempt += 1;
      if (!(await probe())) return;
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 10));
      window.setTimeout(open, ceiling / 2 + Math.random() * (ceiling / 2));
    }

    window.addEventListener("pagehide", function () {
      stopped = true;
      if (socket) socket.close();
    });
    open();
    return { signedOut: signedOut };
  }

  // Calls fn at most once per `ms`, with the latest arguments merged by the caller.
  function throttle(fn, ms) {
    let timer = null;
    let last = 0;
    return function () {
      if (timer) return;
      const wait = Math.max(0, last + ms - Date.now());
      timer = window.setTimeout(function () {
        timer = null;
        last = Date.now();
        fn();
      }, wait);
    };
  }

  window.EventHubDeadLetters = {
    connect: connect,
    fetchFragment: fetchFragment,
    swapById: swapById,
    throttle: throttle,
    SignedOut: SignedOut,
  };
})();
