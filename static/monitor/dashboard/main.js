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
//   The window is filled once from /api/v1/monitor/history/busiest at load.
// - After the first frame the socket sends deltas: the rows that changed, with the
//   tick they apply to (delta.js); a page that missed one asks for the whole view.
//   It only sends the chosen domain's topics, groups and services, and of the groups
//   the table's page (monitor/pages.py).
// - The socket reconnects by itself with exponential backoff and jitter. While it
//   is down, every attempt also reads /api/v1/monitor/snapshot: a proxy that blocks
//   websockets still leaves a page that updates, and an expired session (403) is
//   told to the user instead of being retried forever.
// - Text from the buses and the design reaches the DOM only through textContent;
//   Cytoscape draws its labels on a <canvas>.
//
// The files, loaded in this order by templates/monitor/dashboard.html, share one
// namespace, window.EventHubDashboard: state.js (settings and state), helpers.js,
// tables.js, scope.js (domain filter), banners.js, panels.js, series.js, charts.js,
// history.js, graph.js, observed.js, delta.js, apply.js, socket.js, and this one,
// which wires the controls and starts the page.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state } = dash; // state.js
  const { $, readJson } = dash; // helpers.js
  const { domainSelect, computeScope } = dash; // scope.js
  const { renderHeader } = dash; // banners.js
  const { renderGroups } = dash; // panels.js
  const { series } = dash; // series.js
  const { scheduleCharts } = dash; // charts.js
  const { filterGraph, fitGraph, initGraph, currentGraph } = dash; // graph.js
  const { apply, rerender } = dash; // apply.js
  const { connect, currentSocket, subscribe } = dash; // socket.js

  const FILTER_PAUSE_MS = 400;

  if (domainSelect) {
    domainSelect.addEventListener("change", function () {
      computeScope();
      const url = new URL(location.href);
      if (state.domain) url.searchParams.set("domain", state.domain);
      else url.searchParams.delete("domain");
      history.replaceState(null, "", url);
      filterGraph();
      rerender();
      subscribe();
    });
  }
  // The groups table's filter and pages: the rows on screen are filtered at once, and the
  // server is asked for the matching page (once typing pauses).
  const groupFilter = $("groups-filter");
  let filterTimer = 0;
  if (groupFilter) {
    groupFilter.addEventListener("input", function () {
      state.groupFilter = groupFilter.value.trim();
      state.groupPage = 0;
      if (state.snapshot) renderGroups();
      clearTimeout(filterTimer);
      filterTimer = setTimeout(subscribe, FILTER_PAUSE_MS);
    });
  }
  [
    ["groups-prev", -1],
    ["groups-next", 1],
  ].forEach(function (pair) {
    const button = $(pair[0]);
    if (!button) return;
    button.addEventListener("click", function () {
      state.groupPage = Math.max(0, state.groupPage + pair[1]);
      subscribe();
      if (state.snapshot) renderGroups();
    });
  });
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
    cy: currentGraph,
    socket: currentSocket,
  };
})(window.EventHubDashboard);
