// Small helpers every part of the dashboard uses: DOM lookups and writes that touch the
// DOM only on change, number and time formats, Burrow's status names, and JSON over HTTP.
(function (dash) {
  "use strict";
  if (!dash) return;

  // Burrow's severity order (monitor/burrow.py): higher is worse.
  const STATUS_RANK = { NOTFOUND: 0, OK: 1, WARN: 2, ERR: 3, STOP: 4, STALL: 5, REWIND: 6 };

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

  async function fetchJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      const error = new Error("HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  Object.assign(dash, {
    $,
    readJson,
    ms,
    isNum,
    fmtInt,
    fmtRate,
    fmtDuration,
    fmtAgo,
    fmtValue,
    clock,
    statusName,
    rank,
    busLabel,
    setText,
    setTitle,
    fetchJson,
  });
})(window.EventHubDashboard);
