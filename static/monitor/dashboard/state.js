// The live monitor's shared namespace, `window.EventHubDashboard`: loaded first, it holds
// the page root, the settings read from its data-* attributes, the URLs and the one
// mutable `state`. Each later file adds its functions to the namespace and takes what it
// needs from the files before it; main.js says how the pieces fit together.
(function () {
  "use strict";

  const root = document.getElementById("monitor");
  if (!root) return;

  const TICK_S = Number(root.dataset.tickSeconds) || 2;
  const WINDOW_MS = (Number(root.dataset.windowMinutes) || 10) * 60 * 1000;

  const urls = {
    socket: root.dataset.socketUrl,
    history: root.dataset.historyUrl,
    snapshot: root.dataset.snapshotUrl,
    login: root.dataset.loginUrl,
    browse: root.dataset.browseUrl, // the topic browser, "/browse/": + bus + "/" + topic + "/"
  };

  const state = {
    snapshot: null,
    frames: 0, // snapshots applied (embedded + socket + fallback reads)
    socketFrames: 0,
    deltas: 0, // delta frames received
    refreshes: 0, // whole views asked for after a missed delta
    lastFrameAt: 0,
    lastRecorded: 0, // ms of the newest snapshot in the chart series
    firstRecorded: 0, // ms of the first one this page saw (older points came from history)
    connection: "connecting",
    domain: "",
    scope: null, // {topics: Set("bus:address"), services: Set(name), nodes: Set(id)} when a domain is chosen
    lagUnit: "messages",
    groupFilter: "",
    groupPage: 0, // the page of the groups table the socket is subscribed to (monitor/pages.py)
    viewAsked: false, // a "subscribe" is on its way: the page in the frames is not ours yet
    historyRequested: false,
  };

  window.EventHubDashboard = { root: root, TICK_S: TICK_S, WINDOW_MS: WINDOW_MS, urls: urls, state: state };
})();
