// `patch(snapshot, delta)`: the snapshot a delta frame leads to, or null when the delta
// was made from another tick than ours (a frame was missed: ask for a full one).
// The same rules as monitor/deltas.py, which makes the frames: rows of the four big
// lists travel one by one, keyed, a known row as its changed fields only; the fields
// that grow with the clock are left out and derived here from the moment they count
// from and the frame's `at`.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { ms } = dash; // helpers.js

  const KEYS = {
    topics: ["bus", "name"],
    groups: ["bus", "group", "topic"],
    services: ["service"],
    edges: ["edge_id"],
  };
  const DERIVED = { silent_s: "moved_at", lag_seconds: "lag_since" };

  function keyOf(fields, row) {
    return fields
      .map(function (f) {
        return String(row[f]);
      })
      .join("\u0000");
  }

  function deriveRow(row, now) {
    Object.keys(DERIVED).forEach(function (field) {
      const anchor = DERIVED[field];
      if (anchor in row) row[field] = row[anchor] === null ? null : Math.round((now - row[anchor]) * 10) / 10;
    });
  }

  function derive(snap) {
    const now = ms(snap.at) / 1000;
    Object.keys(KEYS).forEach(function (field) {
      (snap[field] || []).forEach(function (row) {
        deriveRow(row, now);
      });
    });
    ((snap.drift || {}).silent_edges || []).forEach(function (row) {
      deriveRow(row, now);
    });
  }

  function patch(snap, delta) {
    if (!snap || delta.base !== snap.tick) return null;
    const next = Object.assign({}, snap, delta.set || {}, { tick: delta.tick });
    const rows = delta.rows || {};
    Object.keys(rows).forEach(function (field) {
      const fields = KEYS[field];
      if (!fields) return;
      const byKey = new Map();
      (snap[field] || []).forEach(function (row) {
        byKey.set(keyOf(fields, row), row);
      });
      (rows[field].remove || []).forEach(function (key) {
        byKey.delete(key.map(String).join("\u0000"));
      });
      // A new row whole, or the key and the changed fields of one we have.
      (rows[field].upsert || []).forEach(function (entry) {
        const key = keyOf(fields, entry);
        byKey.set(key, Object.assign({}, byKey.get(key), entry));
      });
      next[field] = Array.from(byKey.values());
    });
    derive(next);
    return next;
  }

  Object.assign(dash, { patch });
})(window.EventHubDashboard);
