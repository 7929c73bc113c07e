// `apply(snapshot)`: the one way data gets in. Records the snapshot for the charts and
// redraws every panel from it.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state } = dash; // state.js
  const { $ } = dash; // helpers.js
  const { renderHeader, renderBanners } = dash; // banners.js
  const { renderAlerts, renderGroups, renderServices, renderDrift } = dash; // panels.js
  const { record } = dash; // series.js
  const { renderDlqTotal, scheduleCharts } = dash; // charts.js
  const { loadHistory } = dash; // history.js
  const { overlayGraph } = dash; // graph.js
  const { renderObserved, renderValidity } = dash; // observed.js

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
    renderObserved();
    renderValidity();
    scheduleCharts();
    loadHistory();
  }

  function rerender() {
    if (!state.snapshot) return;
    renderGroups();
    renderServices();
    scheduleCharts();
  }

  Object.assign(dash, { apply, rerender });
})(window.EventHubDashboard);
