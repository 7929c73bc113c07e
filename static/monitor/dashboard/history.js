// The charts' first minutes: read once from /api/v1/monitor/history/busiest at load and
// put in front of what the socket has brought since.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, urls, WINDOW_MS } = dash; // state.js
  const { ms, isNum, fetchJson } = dash; // helpers.js
  const { series, FIELDS } = dash; // series.js
  const { scheduleCharts } = dash; // charts.js

  const HISTORY_SERIES = 30; // series read at load, per kind (topics, groups)

  // Older points ([at, ...values], oldest first) go in front of what the socket already brought.
  function prepend(s, fields, points) {
    const first = s.t.length ? s.t[0] : Infinity;
    const older = [];
    points.forEach(function (point) {
      const at = ms(point[0]);
      if (at !== null && at < first) older.push(point);
    });
    if (!older.length) return;
    s.t.unshift.apply(
      s.t,
      older.map(function (point) {
        return ms(point[0]);
      })
    );
    fields.forEach(function (f, i) {
      s[f].unshift.apply(
        s[f],
        older.map(function (point) {
          return isNum(point[i + 1]) ? point[i + 1] : null;
        })
      );
    });
  }

  // One request: the server picks the series that moved in the window (topics by
  // rate, groups by lag), which this moment's snapshot cannot tell (a burst a
  // minute ago has a rate of 0 now). A failed request just starts from the live frames.
  function loadHistory() {
    if (state.historyRequested || !state.snapshot || !urls.history || typeof Plotly === "undefined") return;
    state.historyRequested = true;
    // The window ends at the snapshot's time (the server's clock, not this machine's).
    const end = ms(state.snapshot.at);
    const q = new URLSearchParams({
      since: new Date(end - WINDOW_MS).toISOString(),
      until: new Date(end).toISOString(),
      limit: String(HISTORY_SERIES),
    });
    fetchJson(urls.history + "?" + q)
      .then(function (data) {
        (data.topics || []).forEach(function (row) {
          const s = series.topics.get(row.bus + ":" + row.topic);
          if (s) prepend(s, FIELDS.topics, row.points || []);
        });
        (data.groups || []).forEach(function (row) {
          const s = series.groups.get(row.bus + ":" + row.group + ":" + row.topic);
          if (s) prepend(s, FIELDS.groups, row.points || []);
        });
        scheduleCharts();
      })
      .catch(function () {});
  }

  Object.assign(dash, { loadHistory });
})(window.EventHubDashboard);
