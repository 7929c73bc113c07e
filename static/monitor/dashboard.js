// The live monitor: charts, tables, the design graph with live overlays, alerts and
// drift, all drawn from one snapshot at a time: the one embedded in the page first
// (json_script "monitor-snapshot"), then one per collector tick from /ws/monitor/.
//
// How it is put together:
// - `apply(snapshot)` is the only way data gets in. It adds the snapshot to the
//   chart series (`record`) and redraws every panel from it. Frames come every tick
//   (2 s by default); tables are reconciled row by row (keyed), so a hovered status
//   keeps its tooltip and nothing flickers. Charts are not drawn while the tab is
//   hidden and catch up when it shows again.
// - Charts keep their own rolling window (10 min) per series, keyed by bus + topic
//   (+ group): a topic or group that appears later gets a new trace, and Plotly's
//   `uid` keeps each trace's identity (colour, legend toggle) across Plotly.react.
//   The window is filled once from /api/v1/monitor/history at load.
// - The socket reconnects by itself with exponential backoff and jitter. While it
//   is down, every attempt also reads /api/v1/monitor/snapshot: a proxy that blocks
//   websockets still leaves a page that updates, and an expired session (403) is
//   told to the user instead of being retried forever.
// - Text from the buses and the design reaches the DOM only through textContent;
//   Cytoscape draws its labels on a <canvas>.
(function () {
  "use strict";

  const root = document.getElementById("monitor");
  if (!root) return;

  const TICK_S = Number(root.dataset.tickSeconds) || 2;
  const WINDOW_MS = (Number(root.dataset.windowMinutes) || 10) * 60 * 1000;
  const MAX_TRACES = 15;
  const LEGEND_CHARS = 34; // per chart: the busiest series; a legend of 200 topics helps nobody
  const HISTORY_SERIES = 30; // history requests at load, per kind (topics, groups)
  const HISTORY_PARALLEL = 4;
  const TABLE_LIMIT = 300;
  const DRIFT_LIMIT = 50;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const STALE_AFTER_MS = Math.max(3 * TICK_S * 1000, 10000);
  // Burrow's severity order (monitor/burrow.py): higher is worse.
  const STATUS_RANK = { NOTFOUND: 0, OK: 1, WARN: 2, ERR: 3, STOP: 4, STALL: 5, REWIND: 6 };
  const STATUS_COLOURS = {
    OK: "#1a7f37",
    WARN: "#b7791f",
    ERR: "#c62828",
    STALL: "#c62828",
    REWIND: "#c62828",
    STOP: "#6b1d1d",
    NOTFOUND: "#8a94a3",
  };
  // Plotly's default qualitative palette, handed out in order of first sighting and
  // kept per series, so a new trace never repaints the others.
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  const urls = {
    socket: root.dataset.socketUrl,
    history: root.dataset.historyUrl,
    snapshot: root.dataset.snapshotUrl,
    login: root.dataset.loginUrl,
  };

  const state = {
    snapshot: null,
    frames: 0, // snapshots applied (embedded + socket + fallback reads)
    socketFrames: 0,
    lastFrameAt: 0,
    lastRecorded: 0, // ms of the newest snapshot in the chart series
    firstRecorded: 0, // ms of the first one this page saw (older points came from history)
    connection: "connecting",
    domain: "",
    scope: null, // {topics: Set("bus:address"), services: Set(name), nodes: Set(id)} when a domain is chosen
    lagUnit: "messages",
    groupFilter: "",
    historyRequested: false,
  };

  // ------------------------------------------------------------------ helpers
  function $(id) {
    return document.getElementById(id);
  }

  function readJson(id) {
    const node = $(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (err) {
      return null;
    }
  }

  // ISO 8601 from Python (microseconds, +00:00) to epoch ms; null when absent.
  function ms(iso) {
    if (!iso) return null;
    const value = Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(value) ? null : value;
  }

  function isNum(v) {
    return typeof v === "number" && Number.isFinite(v);
  }

  function fmtInt(v) {
    return isNum(v) ? Math.round(v).toLocaleString() : "—";
  }

  function fmtRate(v) {
    if (!isNum(v)) return "—";
    const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return v.toFixed(digits) + "/s";
  }

  function fmtDuration(seconds) {
    if (!isNum(seconds)) return "—";
    const s = Math.max(0, seconds);
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function fmtAgo(iso, nowMs) {
    const at = ms(iso);
    if (at === null) return "never";
    const s = Math.max(0, (nowMs - at) / 1000);
    if (s < 5) return "just now";
    return fmtDuration(s).replace(/ \d+ s$/, "") + " ago";
  }

  function fmtValue(v) {
    if (!isNum(v)) return v === null || v === undefined ? "—" : String(v);
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : String(Math.round(v * 100) / 100);
  }

  function clock(msValue) {
    return new Date(msValue).toLocaleTimeString();
  }

  // Status names go into class names: only the known ones.
  function statusName(status) {
    return Object.prototype.hasOwnProperty.call(STATUS_RANK, status) ? status : "NOTFOUND";
  }

  function rank(status) {
    return STATUS_RANK[statusName(status)];
  }

  function busLabel(kind) {
    return kind === "redis" ? "Redis" : kind === "kafka" ? "Kafka" : String(kind || "");
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function setTitle(node, title) {
    const value = title || "";
    if (node.title !== value) node.title = value;
  }

  // ------------------------------------------------------------------ tables
  // A cell spec: {text, cls, title, badge: "class-suffix"} — a badge cell holds a
  // <span class="status status-…"> with the text.
  function fillCell(td, spec) {
    const cls = spec.cls || "";
    if (td.className !== cls) td.className = cls;
    if (spec.badge) {
      let span = td.firstElementChild;
      if (!span) {
        td.textContent = "";
        span = td.appendChild(document.createElement("span"));
      }
      const badgeCls = "status status-" + spec.badge;
      if (span.className !== badgeCls) span.className = badgeCls;
      setText(span, spec.text);
      setTitle(span, spec.title);
      let hidden = span.nextElementSibling;
      if (spec.title) {
        // The reason for keyboard and screen-reader users too, not only on hover.
        if (!hidden) {
          hidden = td.appendChild(document.createElement("span"));
          hidden.className = "visually-hidden";
        }
        setText(hidden, " (" + spec.title + ")");
      } else if (hidden) {
        hidden.remove();
      }
      return;
    }
    setTitle(td, spec.title);
    const text = spec.text === null || spec.text === undefined ? "" : String(spec.text);
    const tag = spec.tag || "";
    if (!tag && !td.firstElementChild) {
      setText(td, text);
      return;
    }
    // A cell with a small tag after its text ("not designed"): rebuilt only when either changes.
    if (td.dataset.text === text && td.dataset.tag === tag) return;
    td.dataset.text = text;
    td.dataset.tag = tag;
    td.textContent = text;
    if (tag) {
      const span = td.appendChild(document.createElement("span"));
      span.className = "tag";
      span.textContent = tag;
    }
  }

  // Keyed reconcile: rows are reused by key, updated in place and moved only when
  // the order changes; a last row says how many were left out.
  function renderRows(tableId, items, keyOf, cellsOf, limit, rowClass) {
    const table = $(tableId);
    if (!table) return;
    const tbody = table.tBodies[0];
    const byKey = new Map();
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      byKey.set(tr.dataset.key, tr);
    });
    const shown = items.slice(0, limit);
    const wanted = [];
    shown.forEach(function (item) {
      const key = keyOf(item);
      const cells = cellsOf(item);
      let tr = byKey.get(key);
      if (!tr || tr.cells.length !== cells.length) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        cells.forEach(function () {
          tr.appendChild(document.createElement("td"));
        });
      }
      byKey.delete(key);
      cells.forEach(function (spec, i) {
        fillCell(tr.cells[i], spec);
      });
      const cls = rowClass ? rowClass(item) : "";
      if (tr.className !== cls) tr.className = cls;
      wanted.push(tr);
    });
    if (items.length > shown.length) {
      let more = byKey.get("__more__");
      if (!more) {
        more = document.createElement("tr");
        more.dataset.key = "__more__";
        const td = more.appendChild(document.createElement("td"));
        td.className = "more";
      }
      byKey.delete("__more__");
      more.cells[0].colSpan = table.tHead.rows[0].cells.length;
      setText(more.cells[0], "… and " + (items.length - shown.length) + " more");
      wanted.push(more);
    }
    byKey.forEach(function (tr) {
      tr.remove();
    });
    wanted.forEach(function (tr, i) {
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    table.hidden = items.length === 0;
    const none = table.parentElement.querySelector(":scope > .none") || table.parentElement.parentElement.querySelector(":scope > .none");
    if (none) none.hidden = items.length > 0;
  }

  // ------------------------------------------------------------------ scope (domain filter)
  const graph = readJson("monitor-graph") || { nodes: [], edges: [] };
  const domainSelect = $("monitor-domain");

  function computeScope() {
    state.domain = domainSelect ? domainSelect.value : "";
    if (!state.domain) {
      state.scope = null;
      return;
    }
    // The same rule as designer.api.build_graph(domain): the domain's nodes, the
    // edges touching them, and the nodes at the other end of those edges.
    const inside = new Set();
    graph.nodes.forEach(function (n) {
      if (n.domain === state.domain) inside.add(n.id);
    });
    const keep = new Set(inside);
    const edges = new Set();
    graph.edges.forEach(function (e) {
      if (inside.has(e.source) || inside.has(e.target)) {
        keep.add(e.source);
        keep.add(e.target);
        edges.add(e.id);
      }
    });
    const topics = new Set();
    const services = new Set();
    graph.nodes.forEach(function (n) {
      if (!keep.has(n.id)) return;
      if (n.kind === "topic") topics.add(n.bus + ":" + n.address);
      if (n.kind === "service") services.add(n.label);
    });
    state.scope = { nodes: keep, edges: edges, topics: topics, services: services };
  }

  function topicInScope(bus, name) {
    return !state.scope || state.scope.topics.has(bus + ":" + name);
  }

  // ------------------------------------------------------------------ header, banners, empty state
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

  // ------------------------------------------------------------------ panels
  function renderAlerts() {
    const alerts = state.snapshot.alerts || [];
    const now = ms(state.snapshot.at);
    const firing = alerts.filter(function (a) {
      return a.state === "firing";
    }).length;
    setText($("alerts-count"), alerts.length ? firing + " firing · " + (alerts.length - firing) + " resolved" : "");
    renderRows(
      "alerts-table",
      alerts,
      function (a) {
        return String(a.id);
      },
      function (a) {
        const started = ms(a.started_at);
        return [
          { badge: a.state === "firing" ? "firing" : "resolved", text: a.state },
          { text: a.rule, title: a.kind },
          { text: a.subject },
          { text: a.message },
          { text: fmtValue(a.value), cls: "num" },
          { text: fmtAgo(a.started_at, now), title: started ? new Date(started).toLocaleString() : "" },
          { text: a.resolved_at ? fmtAgo(a.resolved_at, now) : "—", title: a.resolved_at ? new Date(ms(a.resolved_at)).toLocaleString() : "" },
        ];
      },
      TABLE_LIMIT,
      function (a) {
        return a.state === "firing" ? "alert-firing" : "alert-resolved";
      }
    );
  }

  function renderGroups() {
    const needle = state.groupFilter.toLowerCase();
    const rows = (state.snapshot.groups || []).filter(function (g) {
      if (!topicInScope(g.bus, g.topic)) return false;
      return !needle || String(g.group).toLowerCase().includes(needle) || String(g.topic).toLowerCase().includes(needle);
    });
    rows.sort(function (a, b) {
      return rank(b.status) - rank(a.status) || (b.lag || 0) - (a.lag || 0) || String(a.group).localeCompare(String(b.group));
    });
    setText($("groups-count"), rows.length ? String(rows.length) : "");
    renderRows(
      "groups-table",
      rows,
      function (g) {
        return g.bus + "\u0000" + g.group + "\u0000" + g.topic;
      },
      function (g) {
        const status = statusName(g.status);
        return [
          { badge: status, text: status, title: g.reason || "" },
          { text: g.group, tag: g.designed ? "" : "not designed" },
          { text: g.topic },
          { text: busLabel(g.bus) },
          { text: fmtInt(g.lag), cls: "num" },
          { text: fmtDuration(g.lag_seconds), cls: "num" },
          { text: fmtRate(g.consume_rate), cls: "num" },
          {
            text: fmtDuration(g.time_to_drain_s),
            cls: "num",
            title: isNum(g.time_to_drain_s) ? "" : "Not catching up at the current rates",
          },
          { text: g.state || "" },
        ];
      },
      TABLE_LIMIT,
      function (g) {
        return "status-row-" + statusName(g.status);
      }
    );
    const none = $("groups-none");
    if (rows.length === 0 && (state.snapshot.groups || []).length > 0) {
      setText(none, needle || state.scope ? "No consumer group matches the filter." : "No consumer group has committed on a topic yet.");
    } else {
      setText(none, "No consumer group has committed on a topic yet.");
    }
  }

  function renderServices() {
    const now = ms(state.snapshot.at);
    const rows = (state.snapshot.services || []).filter(function (s) {
      return !state.scope || state.scope.services.has(s.service);
    });
    rows.sort(function (a, b) {
      return Number(a.up) - Number(b.up) || String(a.service).localeCompare(String(b.service));
    });
    const down = rows.filter(function (s) {
      return !s.up;
    }).length;
    setText($("services-count"), rows.length ? rows.length + (down ? " · " + down + " down" : "") : "");
    renderRows(
      "services-table",
      rows,
      function (s) {
        return String(s.service);
      },
      function (s) {
        const seen = ms(s.last_seen);
        return [
          { text: s.service },
          { badge: s.up ? "up" : "down", text: s.up ? "up" : "down" },
          { text: fmtInt(s.instances), cls: "num" },
          { text: fmtAgo(s.last_seen, now), title: seen ? new Date(seen).toLocaleString() : "" },
          { text: s.last_error || "", cls: s.last_error ? "error-text" : "" },
        ];
      },
      TABLE_LIMIT
    );
  }

  function renderDrift() {
    const drift = state.snapshot.drift || {};
    const topics = drift.undesigned_topics || [];
    const groups = drift.undesigned_groups || [];
    const silent = (drift.silent_edges || []).slice().sort(function (a, b) {
      return (b.silent_s || 0) - (a.silent_s || 0);
    });
    const total = topics.length + groups.length + silent.length;
    setText($("drift-count"), total ? String(total) : "");
    renderRows(
      "drift-topics",
      topics,
      function (t) {
        return t.bus + "\u0000" + t.name;
      },
      function (t) {
        return [{ text: t.name }, { text: busLabel(t.bus) }];
      },
      DRIFT_LIMIT
    );
    renderRows(
      "drift-groups",
      groups,
      function (g) {
        return g.bus + "\u0000" + g.group;
      },
      function (g) {
        return [{ text: g.group }, { text: busLabel(g.bus) }];
      },
      DRIFT_LIMIT
    );
    renderRows(
      "drift-silent",
      silent,
      function (e) {
        return String(e.edge_id);
      },
      function (e) {
        const producer = String(e.edge_id).indexOf("producer:") === 0;
        return [
          { text: e.service },
          { text: producer ? "produces" : "consumes" },
          { text: e.event },
          { text: fmtDuration(e.silent_s), cls: "num" },
        ];
      },
      DRIFT_LIMIT
    );
  }

  // ------------------------------------------------------------------ chart series
  const series = { topics: new Map(), groups: new Map() };
  // Per series, handed out on first sight: a colour and a Plotly uid. Plotly puts
  // the uid into CSS selectors, so it cannot be the key itself (topic names have ":" and ".").
  const identities = new Map();

  function identity(key) {
    let found = identities.get(key);
    if (!found) {
      found = { uid: "series-" + identities.size, colour: PALETTE[identities.size % PALETTE.length] };
      identities.set(key, found);
    }
    return found;
  }

  function topicSeries(t) {
    const key = t.bus + ":" + t.name;
    let s = series.topics.get(key);
    if (!s) {
      s = { key: key, bus: t.bus, topic: t.name, label: t.bus === "redis" ? t.name + " (Redis)" : t.name, t: [], rate: [] };
      series.topics.set(key, s);
    }
    s.designed = !!t.designed;
    s.dead = !!t.dead_letter;
    return s;
  }

  function groupSeries(g) {
    const key = g.bus + ":" + g.group + ":" + g.topic;
    let s = series.groups.get(key);
    if (!s) {
      s = {
        key: key,
        bus: g.bus,
        group: g.group,
        topic: g.topic,
        label: g.group + " → " + g.topic + (g.bus === "redis" ? " (Redis)" : ""),
        t: [],
        lag: [],
        lagS: [],
      };
      series.groups.set(key, s);
    }
    s.designed = !!g.designed;
    return s;
  }

  const FIELDS = { topics: ["rate"], groups: ["lag", "lagS"] };

  function push(s, fields, at, values) {
    s.t.push(at);
    fields.forEach(function (f, i) {
      s[f].push(isNum(values[i]) ? values[i] : null);
    });
  }

  function trim(kind, endMs) {
    const from = endMs - WINDOW_MS - 30000;
    series[kind].forEach(function (s, key) {
      let cut = 0;
      while (cut < s.t.length && s.t[cut] < from) cut++;
      if (cut) {
        s.t.splice(0, cut);
        FIELDS[kind].forEach(function (f) {
          s[f].splice(0, cut);
        });
      }
      // A series with nothing left in the window (a deleted topic) is forgotten.
      const empty = FIELDS[kind].every(function (f) {
        return s[f].every(function (v) {
          return v === null;
        });
      });
      if (empty && s.t.length > 2) series[kind].delete(key);
    });
  }

  // One point per series per snapshot; a series missing from a snapshot gets a
  // gap (null), so a topic that vanished does not draw a line across the hole.
  function record(snap) {
    const at = ms(snap.at);
    if (at === null || at <= state.lastRecorded) return; // a reconnect repeats the last snapshot
    state.lastRecorded = at;
    if (!state.firstRecorded) state.firstRecorded = at;
    const seen = new Set();
    (snap.topics || []).forEach(function (t) {
      const s = topicSeries(t);
      push(s, FIELDS.topics, at, [t.rate]);
      seen.add(s.key);
    });
    (snap.groups || []).forEach(function (g) {
      const s = groupSeries(g);
      push(s, FIELDS.groups, at, [g.lag, g.lag_seconds]);
      seen.add(s.key);
    });
    ["topics", "groups"].forEach(function (kind) {
      series[kind].forEach(function (s) {
        if (!seen.has(s.key)) push(s, FIELDS[kind], at, []);
      });
      trim(kind, at);
    });
  }

  function peak(values) {
    let best = 0;
    for (let i = 0; i < values.length; i++) if (values[i] > best) best = values[i];
    return best;
  }

  // The series a chart shows: busiest first (designed ones even when idle), at most MAX_TRACES.
  function pick(kind, field, accept) {
    const rows = [];
    series[kind].forEach(function (s) {
      if (!accept(s)) return;
      const top = peak(s[field]);
      if (top > 0 || s.designed) rows.push({ s: s, top: top });
    });
    rows.sort(function (a, b) {
      return b.top - a.top || a.s.label.localeCompare(b.s.label);
    });
    const shown = rows.slice(0, MAX_TRACES).map(function (r) {
      return r.s;
    });
    shown.sort(function (a, b) {
      return a.label.localeCompare(b.label);
    });
    return { shown: shown, left: rows.length - shown.length };
  }

  // ------------------------------------------------------------------ charts
  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtons: [["toImage"]],
    toImageButtonOptions: { format: "png", scale: 2 },
  };
  let chartsDirty = false;
  let chartFrame = 0;

  function chartLayout(yTitle, endMs, extra) {
    return Object.assign(
      {
        margin: { l: 56, r: 12, t: 8, b: 24 },
        height: 300,
        xaxis: {
          type: "date",
          range: [new Date(endMs - WINDOW_MS), new Date(endMs)],
          tickformat: "%H:%M",
          hoverformat: "%H:%M:%S",
          fixedrange: true,
          showgrid: false,
        },
        yaxis: { title: { text: yTitle, font: { size: 11 } }, rangemode: "tozero", fixedrange: true, automargin: true, zeroline: true },
        showlegend: true,
        // Below the plot, scrolling past a few rows, so a long legend never squeezes the lines.
        legend: { orientation: "h", x: 0, y: -0.12, yanchor: "top", font: { size: 11 }, maxheight: 64 },
        hovermode: "x unified",
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#1c2430" },
        uirevision: "monitor", // legend toggles survive every redraw
        datarevision: state.lastRecorded,
      },
      extra || {}
    );
  }

  function lineTrace(s, field, hover, scale) {
    const id = identity(s.key);
    return {
      uid: id.uid,
      name: plotlyText(shorten(s.label, LEGEND_CHARS)),
      meta: plotlyText(s.label), // the full name, for the hover label (and the browser tests)
      type: "scatter",
      mode: s.t.length < 3 ? "lines+markers" : "lines", // a lone point needs a dot to be seen
      marker: { size: 5 },
      x: s.t.map(function (t) {
        return new Date(t);
      }),
      y: scale
        ? s[field].map(function (v) {
            return v === null ? null : v * scale;
          })
        : s[field].slice(),
      line: { color: id.colour, width: 1.8 },
      connectgaps: false,
      hovertemplate: hover + "<extra>%{meta}</extra>",
    };
  }

  // Plotly reads a few HTML-like tags in names (<b>, <a href>); entities keep names literal.
  function plotlyText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // Long group → topic names would eat the legend: keep both ends, drop the middle.
  function shorten(text, max) {
    return text.length <= max ? text : text.slice(0, Math.ceil(max / 2) - 1) + "…" + text.slice(text.length - Math.floor(max / 2));
  }

  function note(id, text) {
    const p = $(id);
    p.hidden = !text;
    setText(p, text || "");
  }

  function drawCharts() {
    chartFrame = 0;
    if (document.hidden) {
      chartsDirty = true;
      return;
    }
    chartsDirty = false;
    if (typeof Plotly === "undefined") return;
    if (!state.lastRecorded) {
      ["chart-throughput-note", "chart-lag-note", "chart-dlq-note"].forEach(function (id) {
        note(id, "Waiting for the first snapshot.");
      });
      return;
    }
    const end = state.lastRecorded;

    const throughput = pick("topics", "rate", function (s) {
      return !s.dead && topicInScope(s.bus, s.topic);
    });
    Plotly.react(
      "chart-throughput",
      throughput.shown.map(function (s) {
        return lineTrace(s, "rate", "%{y:.2f} msg/s");
      }),
      chartLayout("messages/s", end),
      PLOT_CONFIG
    );
    note(
      "chart-throughput-note",
      throughput.shown.length === 0
        ? "No topic had traffic in the last 10 minutes."
        : throughput.left > 0
          ? "The " + MAX_TRACES + " busiest topics; " + throughput.left + " quieter ones are left out."
          : ""
    );

    const field = state.lagUnit === "seconds" ? "lagS" : "lag";
    const lag = pick("groups", field, function (s) {
      return topicInScope(s.bus, s.topic);
    });
    Plotly.react(
      "chart-lag",
      lag.shown.map(function (s) {
        return lineTrace(s, field, field === "lagS" ? "%{y:.1f} s" : "%{y:,} messages");
      }),
      chartLayout(field === "lagS" ? "seconds behind" : "messages behind", end),
      PLOT_CONFIG
    );
    note(
      "chart-lag-note",
      lag.shown.length === 0
        ? "No consumer group was behind in the last 10 minutes."
        : lag.left > 0
          ? "The " + MAX_TRACES + " groups furthest behind; " + lag.left + " more are left out."
          : ""
    );

    const dlq = pick("topics", "rate", function (s) {
      return s.dead && topicInScope(s.bus, s.topic);
    });
    // Stacked: the top of the stack is the total inflow.
    const dlqTraces = dlq.shown.map(function (s) {
      const trace = lineTrace(s, "rate", "%{y:.1f}/min", 60);
      trace.stackgroup = "dead-letters";
      trace.line.width = 1;
      return trace;
    });
    Plotly.react("chart-dlq", dlqTraces, chartLayout("dead letters/min", end), PLOT_CONFIG);
    const anyDead = Array.from(series.topics.values()).some(function (s) {
      return s.dead;
    });
    note(
      "chart-dlq-note",
      !anyDead
        ? "No dead-letter topic on the buses yet."
        : dlq.shown.length === 0
          ? "No dead letters in the last 10 minutes."
          : ""
    );
  }

  function scheduleCharts() {
    if (!chartFrame) chartFrame = requestAnimationFrame(drawCharts);
  }

  function renderDlqTotal() {
    const dead = state.snapshot.dead_letters || {};
    setText($("dlq-total"), isNum(dead.inflow_per_min) ? fmtValue(dead.inflow_per_min) + "/min now" : "");
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && chartsDirty) scheduleCharts();
    if (!document.hidden && !socket) reconnectSoon(0);
  });

  Array.prototype.forEach.call(root.querySelectorAll("[data-lag-unit]"), function (button) {
    button.addEventListener("click", function () {
      state.lagUnit = button.dataset.lagUnit;
      root.querySelectorAll("[data-lag-unit]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      setText($("chart-lag-unit"), state.lagUnit);
      scheduleCharts();
    });
  });

  // ------------------------------------------------------------------ history at load
  async function fetchJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error("HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // Older points go in front of what the socket already brought.
  function prepend(s, fields, rows, valuesOf) {
    const first = s.t.length ? s.t[0] : Infinity;
    const older = [];
    rows.forEach(function (row) {
      const at = ms(row.at);
      if (at !== null && at < first) older.push([at, valuesOf(row)]);
    });
    if (!older.length) return;
    s.t.unshift.apply(
      s.t,
      older.map(function (o) {
        return o[0];
      })
    );
    fields.forEach(function (f, i) {
      s[f].unshift.apply(
        s[f],
        older.map(function (o) {
          return isNum(o[1][i]) ? o[1][i] : null;
        })
      );
    });
  }

  function loadHistory() {
    if (state.historyRequested || !state.snapshot || !urls.history || typeof Plotly === "undefined") return;
    state.historyRequested = true;
    // The window ends at the snapshot's time (the server's clock, not this machine's).
    const end = ms(state.snapshot.at);
    const since = new Date(end - WINDOW_MS).toISOString();
    const until = new Date(end).toISOString();
    const jobs = [];
    // Which series had traffic in the last minutes is what history tells, so ask for
    // the likeliest: designed and dead-letter topics, then the busiest right now.
    function weight(s, value) {
      return (s.designed || s.dead ? 1e12 : 0) + value;
    }
    const topics = Array.from(series.topics.values())
      .sort(function (a, b) {
        return weight(b, peak(b.rate)) - weight(a, peak(a.rate));
      })
      .slice(0, HISTORY_SERIES);
    topics.forEach(function (s) {
      jobs.push(function () {
        const q = new URLSearchParams({ bus: s.bus, topic: s.topic, since: since, until: until, resolution: "raw" });
        return fetchJson(urls.history + "?" + q).then(function (data) {
          prepend(s, FIELDS.topics, data.series || [], function (row) {
            return [row.rate];
          });
        });
      });
    });
    const groups = Array.from(series.groups.values())
      .sort(function (a, b) {
        return weight(b, peak(b.lag)) - weight(a, peak(a.lag));
      })
      .slice(0, HISTORY_SERIES);
    groups.forEach(function (s) {
      jobs.push(function () {
        const q = new URLSearchParams({ bus: s.bus, topic: s.topic, group: s.group, since: since, until: until, resolution: "raw" });
        return fetchJson(urls.history + "?" + q).then(function (data) {
          prepend(s, FIELDS.groups, data.series || [], function (row) {
            return [row.lag, row.lag_seconds];
          });
        });
      });
    });
    // A few at a time; a failed series just starts from the live frames.
    let next = 0;
    function worker() {
      if (next >= jobs.length) return Promise.resolve();
      const job = jobs[next++];
      return job()
        .catch(function () {})
        .then(function () {
          scheduleCharts();
          return worker();
        });
    }
    for (let i = 0; i < HISTORY_PARALLEL; i++) worker();
  }

  // ------------------------------------------------------------------ the design graph
  let cy = null;

  function placed(n) {
    return n.x !== null && n.x !== undefined && n.y !== null && n.y !== undefined;
  }

  function initGraph() {
    const container = $("monitor-cy");
    if (!container || container.hidden || !graph.nodes.length || typeof cytoscape === "undefined") return;
    const elements = [];
    graph.nodes.forEach(function (n) {
      const classes = [n.kind];
      if (n.kind === "topic" && n.bus === "redis") classes.push("redis");
      if (n.kind === "event" && n.event_kind === "command") classes.push("command");
      elements.push({
        group: "nodes",
        data: { id: n.id, kind: n.kind, label: n.label, display: n.label, domain: n.domain, bus: n.bus || null, address: n.address || null },
        classes: classes.join(" "),
        position: placed(n) ? { x: n.x, y: n.y } : { x: 0, y: 0 },
      });
    });
    const ids = new Set(graph.nodes.map(function (n) {
      return n.id;
    }));
    graph.edges.forEach(function (e) {
      if (!ids.has(e.source) || !ids.has(e.target)) return;
      elements.push({ group: "edges", data: { id: e.id, kind: e.kind, source: e.source, target: e.target, overlay: "", width: 2 }, classes: e.kind });
    });
    cy = cytoscape({
      container: container,
      elements: elements,
      layout: { name: "preset" },
      autoungrabify: true, // read-only: positions belong to the designer
      boxSelectionEnabled: false,
      wheelSensitivity: 0.3,
      minZoom: 0.15,
      maxZoom: 3,
      style: [
        {
          selector: "node",
          style: {
            label: "data(display)",
            "text-wrap": "wrap",
            "text-max-width": "130px",
            "text-valign": "center",
            "text-halign": "center",
            "font-size": 11,
            "font-family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
            color: "#1c2430",
            width: 144,
            height: 48,
            "border-width": 2,
            "border-color": "#8a94a3",
            "background-color": "#f3f5f8",
          },
        },
        { selector: "node.service", style: { shape: "round-rectangle", "background-color": "#e8f0fe", "border-color": "#2859c5" } },
        { selector: "node.event", style: { shape: "ellipse", width: 156, "background-color": "#fdf0e6", "border-color": "#c05621" } },
        { selector: "node.command", style: { shape: "cut-rectangle", "background-color": "#f3e8fd", "border-color": "#7b3fc4" } },
        { selector: "node.topic", style: { shape: "barrel", height: 56, "background-color": "#e6f6ec", "border-color": "#8a94a3" } },
        { selector: "node.redis", style: { "background-color": "#fde8e8" } },
        { selector: "node.up", style: { "border-color": STATUS_COLOURS.OK, "border-width": 3 } },
        { selector: "node.down", style: { "border-color": STATUS_COLOURS.ERR, "border-width": 4, "border-style": "dashed" } },
        { selector: "node.absent", style: { "border-style": "dotted", opacity: 0.7 } },
        { selector: "node.st-OK", style: { "border-color": STATUS_COLOURS.OK, "border-width": 3 } },
        { selector: "node.st-WARN", style: { "border-color": STATUS_COLOURS.WARN, "border-width": 4 } },
        { selector: "node.st-ERR, node.st-STALL, node.st-REWIND", style: { "border-color": STATUS_COLOURS.ERR, "border-width": 4 } },
        { selector: "node.st-STOP", style: { "border-color": STATUS_COLOURS.STOP, "border-width": 4 } },
        {
          selector: "edge",
          style: {
            width: "data(width)",
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "line-color": "#b8c0cb",
            "target-arrow-color": "#b8c0cb",
            label: "data(overlay)",
            "font-size": 10,
            "font-family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
            color: "#1c2430",
            "text-background-color": "#ffffff",
            "text-background-opacity": 0.9,
            "text-background-padding": "2px",
            "text-background-shape": "round-rectangle",
          },
        },
        { selector: "edge.on-topic", style: { "line-style": "dashed", "target-arrow-shape": "none", width: 1.2, "line-color": "#9fd3b0" } },
        { selector: "edge.flowing", style: { "line-color": "#2859c5", "target-arrow-color": "#2859c5" } },
        { selector: "edge.st-OK", style: { "line-color": STATUS_COLOURS.OK, "target-arrow-color": STATUS_COLOURS.OK } },
        { selector: "edge.st-WARN", style: { "line-color": STATUS_COLOURS.WARN, "target-arrow-color": STATUS_COLOURS.WARN } },
        {
          selector: "edge.st-ERR, edge.st-STALL, edge.st-REWIND",
          style: { "line-color": STATUS_COLOURS.ERR, "target-arrow-color": STATUS_COLOURS.ERR },
        },
        { selector: "edge.st-STOP", style: { "line-color": STATUS_COLOURS.STOP, "target-arrow-color": STATUS_COLOURS.STOP } },
        { selector: "edge.silent", style: { "line-style": "dashed", "line-dash-pattern": [6, 4] } },
        { selector: ".out", style: { display: "none" } },
      ],
    });
    // Nodes the design has no position for: dagre when nothing is placed, else a row below.
    const unplaced = cy.nodes().filter(function (node) {
      return !placed(graph.nodes.find(function (n) {
        return n.id === node.id();
      }));
    });
    if (unplaced.nonempty()) {
      const rest = cy.nodes().not(unplaced);
      if (rest.empty()) {
        cy.elements().layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 90, fit: false, animate: false }).run();
      } else {
        const box = rest.boundingBox({ includeLabels: false });
        unplaced.forEach(function (node, i) {
          node.position({ x: box.x1 + 80 + (i % 6) * 180, y: box.y2 + 100 + Math.floor(i / 6) * 90 });
        });
      }
    }
    filterGraph();
  }

  function fitGraph() {
    if (!cy) return;
    const visible = cy.elements().not(".out");
    if (visible.empty()) return;
    cy.fit(visible, 30);
    if (cy.zoom() > 1.2) {
      cy.zoom(1.2);
      cy.center(visible);
    }
  }

  function filterGraph() {
    if (!cy) return;
    const scope = state.scope;
    cy.batch(function () {
      cy.elements().forEach(function (el) {
        const inside = !scope || (el.isNode() ? scope.nodes.has(el.id()) : scope.edges.has(el.id()));
        el.toggleClass("out", !inside);
      });
    });
    fitGraph();
  }

  function shortRate(v) {
    return isNum(v) ? fmtRate(v) : "";
  }

  // Live numbers on the designed graph: edges carry rate and lag and the group's
  // status; topics their produce rate and their worst group; services up/down.
  function overlayGraph() {
    if (!cy) return;
    const snap = state.snapshot;
    const edges = new Map();
    (snap.edges || []).forEach(function (e) {
      edges.set(String(e.edge_id), e);
    });
    const silent = new Set(
      ((snap.drift || {}).silent_edges || []).map(function (e) {
        return String(e.edge_id);
      })
    );
    const topics = new Map();
    (snap.topics || []).forEach(function (t) {
      topics.set(t.bus + ":" + t.name, t);
    });
    const worst = new Map();
    (snap.groups || []).forEach(function (g) {
      const key = g.bus + ":" + g.topic;
      if (!worst.has(key) || rank(g.status) > rank(worst.get(key))) worst.set(key, statusName(g.status));
    });
    const services = new Map();
    (snap.services || []).forEach(function (s) {
      services.set(s.service, s);
    });
    const busUp = new Map();
    (snap.buses || []).forEach(function (b) {
      busUp.set(b.kind, !!b.up);
    });

    cy.batch(function () {
      cy.edges().forEach(function (edge) {
        const kind = edge.data("kind");
        if (kind === "on-topic") return;
        const live = edges.get(edge.id());
        const classes = [kind];
        let text = "";
        let width = 1.5;
        if (live) {
          const rate = isNum(live.rate) ? live.rate : null;
          if (kind === "produces") {
            text = shortRate(rate);
            if (rate > 0) classes.push("flowing");
          } else {
            text = [shortRate(rate), isNum(live.lag) ? "lag " + fmtInt(live.lag) : ""].filter(Boolean).join(" · ");
            if (live.status) classes.push("st-" + statusName(live.status));
          }
          if (rate > 0) width = 1.5 + Math.min(4, Math.log10(1 + rate) * 2);
        }
        if (silent.has(edge.id())) classes.push("silent");
        edge.classes(classes.join(" ") + (edge.hasClass("out") ? " out" : ""));
        if (edge.data("overlay") !== text) edge.data("overlay", text);
        if (edge.data("width") !== width) edge.data("width", width);
      });
      cy.nodes().forEach(function (node) {
        const kind = node.data("kind");
        const base = node.classes().filter(function (c) {
          return c === kind || c === "redis" || c === "command" || c === "out";
        });
        const classes = base.slice();
        let display = node.data("label");
        if (kind === "topic") {
          const key = node.data("bus") + ":" + node.data("address");
          const live = topics.get(key);
          display += "\n" + busLabel(node.data("bus"));
          if (live) {
            if (isNum(live.rate)) display += " · " + fmtRate(live.rate);
            if (worst.has(key)) classes.push("st-" + worst.get(key));
          } else if (busUp.get(node.data("bus"))) {
            classes.push("absent"); // designed, but not on the bus
            display += " · not on the bus";
          }
        } else if (kind === "service") {
          const live = services.get(node.data("label"));
          if (live) {
            classes.push(live.up ? "up" : "down");
            display += "\n" + (live.up ? live.instances + (live.instances === 1 ? " instance" : " instances") : "down");
          }
        }
        node.classes(classes.join(" "));
        if (node.data("display") !== display) node.data("display", display);
      });
    });
  }

  // ------------------------------------------------------------------ apply
  const emptyState = $("monitor-empty");

  function apply(snap) {
    if (!snap || typeof snap !== "object") return;
    if (!snap.at) {
      // No collector has reported (or a restarted server has not ticked yet):
      // keep what is on screen, show the empty state only when there is nothing.
      if (!state.snapshot) emptyState.hidden = false;
      return;
    }
    state.snapshot = snap;
    state.frames += 1;
    state.lastFrameAt = Date.now();
    emptyState.hidden = true;
    record(snap);
    renderHeader();
    renderBanners();
    renderAlerts();
    renderGroups();
    renderServices();
    renderDrift();
    renderDlqTotal();
    overlayGraph();
    scheduleCharts();
    loadHistory();
  }

  function rerender() {
    if (!state.snapshot) return;
    renderGroups();
    renderServices();
    scheduleCharts();
  }

  // ------------------------------------------------------------------ the socket
  let socket = null;
  let attempt = 0;
  let retryTimer = 0;
  let signedOut = false;

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + urls.socket;
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
      if (message && message.type === "snapshot") {
        state.socketFrames += 1;
        apply(message.snapshot);
      }
    };
    ws.onclose = function () {
      if (socket === ws) socket = null;
      reconnectSoon();
    };
    // onerror is always followed by onclose, which does the work.
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

  // ------------------------------------------------------------------ controls and start
  if (domainSelect) {
    domainSelect.addEventListener("change", function () {
      computeScope();
      const url = new URL(location.href);
      if (state.domain) url.searchParams.set("domain", state.domain);
      else url.searchParams.delete("domain");
      history.replaceState(null, "", url);
      filterGraph();
      rerender();
    });
  }
  const groupFilter = $("groups-filter");
  if (groupFilter) {
    groupFilter.addEventListener("input", function () {
      state.groupFilter = groupFilter.value.trim();
      if (state.snapshot) renderGroups();
    });
  }
  const fitButton = $("graph-fit");
  if (fitButton) fitButton.addEventListener("click", fitGraph);

  setInterval(renderHeader, 1000); // "no new snapshot for …" when the collector stops

  computeScope();
  initGraph();
  apply(readJson("monitor-snapshot"));
  scheduleCharts();
  connect();

  // For the browser tests and for debugging from the console.
  window.eventhubMonitor = {
    state: state,
    series: series,
    cy: function () {
      return cy;
    },
    socket: function () {
      return socket;
    },
  };
})();
