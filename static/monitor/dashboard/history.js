// The charts' first minutes: read once from /api/v1/monitor/history at load and put in
// front of what the socket has brought since.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, urls, WINDOW_MS } = dash; // state.js
  const { ms, isNum, fetchJson } = dash; // helpers.js
  const { series, FIELDS, peak } = dash; // series.js
  const { scheduleCharts } = dash; // charts.js

  const HISTORY_SERIES = 30; // history requests at load, per kind (topics, groups)
  const HISTORY_PARALLEL = 4;

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

  Object.assign(dash, { loadHistory });
})(window.EventHubDashboard);
