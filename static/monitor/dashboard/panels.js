// The table panels: alerts, consumer groups, services and drift from the design.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, urls } = dash; // state.js
  const { // helpers.js
    $,
    ms,
    isNum,
    fmtInt,
    fmtRate,
    fmtDuration,
    fmtAgo,
    fmtValue,
    statusName,
    rank,
    busLabel,
    setText,
  } = dash;
  const { renderRows } = dash; // tables.js
  const { topicInScope } = dash; // scope.js

  const TABLE_LIMIT = 300;

  // The topic browser's page of a topic (eventstore/urls.py: browse/<bus>/<topic>/).
  function browseUrl(bus, topic) {
    return urls.browse ? urls.browse + encodeURIComponent(bus) + "/" + encodeURIComponent(topic) + "/" : "";
  }
  const DRIFT_LIMIT = 50;

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

  // By code point, as the server orders the pages (monitor/pages.py), so that a row
  // sits on the page the server put it on.
  function byText(a, b) {
    const x = String(a);
    const y = String(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  function renderGroups() {
    const needle = state.groupFilter.toLowerCase();
    const rows = (state.snapshot.groups || []).filter(function (g) {
      if (!topicInScope(g.bus, g.topic)) return false;
      return !needle || String(g.group).toLowerCase().includes(needle) || String(g.topic).toLowerCase().includes(needle);
    });
    rows.sort(function (a, b) {
      return (
        rank(b.status) - rank(a.status) ||
        (b.lag || 0) - (a.lag || 0) ||
        byText(a.group, b.group) ||
        byText(a.topic, b.topic) ||
        byText(a.bus, b.bus)
      );
    });
    // A socket sends one page of the table; the snapshot says which, and how many match.
    const page = state.snapshot.groups_page;
    if (page && !state.viewAsked) state.groupPage = page.page;
    const total = page ? page.total : rows.length;
    setText($("groups-count"), total ? fmtInt(total) : "");
    renderPager(page, rows.length);
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
          { text: g.topic, href: browseUrl(g.bus, g.topic) },
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

  function renderPager(page, shown) {
    const pager = $("groups-pager");
    if (!pager) return;
    pager.hidden = !page || page.pages <= 1;
    if (pager.hidden) return;
    const first = page.page * page.size;
    setText($("groups-range"), fmtInt(first + (shown ? 1 : 0)) + "–" + fmtInt(first + shown) + " of " + fmtInt(page.total));
    $("groups-prev").disabled = state.groupPage <= 0;
    $("groups-next").disabled = state.groupPage >= page.pages - 1;
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
        return [{ text: t.name, href: browseUrl(t.bus, t.name) }, { text: busLabel(t.bus) }];
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

  Object.assign(dash, { renderAlerts, renderGroups, renderServices, renderDrift });
})(window.EventHubDashboard);
