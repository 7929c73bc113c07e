// The charts' data: a rolling window per series (bus + topic, or bus + group + topic),
// one point per snapshot, and which series a chart shows.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state, WINDOW_MS } = dash; // state.js
  const { ms, isNum } = dash; // helpers.js

  const MAX_TRACES = 15;
  // Plotly's default qualitative palette, handed out in order of first sighting and
  // kept per series, so a new trace never repaints the others.
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

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

  Object.assign(dash, { series, FIELDS, identity, record, peak, pick, MAX_TRACES });
})(window.EventHubDashboard);
