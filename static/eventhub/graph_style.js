// The look of the design graph, shared by the designer canvas (static/designer/canvas.js)
// and the monitor's graph panel (static/monitor/dashboard/graph.js), so that a service,
// an event, a command or a topic has one shape and one fill everywhere, the ones the
// canvas legend shows. Loaded as a plain script before either page's own; it defines
// one global, `EventHubGraphStyle`.
//
// A page calls `EventHubGraphStyle.stylesheet({node, edge, rules})`:
// - `node` and `edge` are merged into the base rules for every node and every edge,
//   which come before the per-kind rules, so a page's default size or colour never
//   overrides what the kinds say;
// - `rules` are appended after the base, where Cytoscape lets them win (a later rule
//   beats an earlier one whatever its selector): the canvas adds its edge colours,
//   lints and editing states, the monitor its live status colours.
(function () {
  "use strict";

  const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
  const INK = "#1c2430";
  const MUTED = "#8a94a3";

  const NODE = {
    label: "data(display)",
    "text-wrap": "wrap",
    "text-valign": "center",
    "text-halign": "center",
    "font-family": FONT,
    color: INK,
    height: 50,
    "border-width": 2,
    "border-color": MUTED,
    "background-color": "#f3f5f8",
  };

  const NODE_KINDS = [
    { selector: "node.service", style: { shape: "round-rectangle", "background-color": "#e8f0fe", "border-color": "#2859c5" } },
    { selector: "node.event", style: { shape: "ellipse", "background-color": "#fdf0e6", "border-color": "#c05621" } },
    { selector: "node.command", style: { shape: "cut-rectangle", "background-color": "#f3e8fd", "border-color": "#7b3fc4" } },
    { selector: "node.topic", style: { shape: "barrel", height: 58, "background-color": "#e6f6ec", "border-color": "#1a7f37" } },
    { selector: "node.redis", style: { "background-color": "#fde8e8", "border-color": "#c62828" } },
  ];

  const EDGE = {
    width: 2,
    "curve-style": "bezier",
    "target-arrow-shape": "triangle",
    "line-color": MUTED,
    "target-arrow-color": MUTED,
  };

  const EDGE_KINDS = [
    // An event is on a topic; nothing flows along this edge, so it has no arrow.
    { selector: "edge.on-topic", style: { "line-style": "dashed", "target-arrow-shape": "none", width: 1.5, "line-color": "#1a7f37" } },
  ];

  function stylesheet(page) {
    const own = page || {};
    return [{ selector: "node", style: Object.assign({}, NODE, own.node) }]
      .concat(NODE_KINDS)
      .concat([{ selector: "edge", style: Object.assign({}, EDGE, own.edge) }])
      .concat(EDGE_KINDS)
      .concat(own.rules || []);
  }

  window.EventHubGraphStyle = Object.freeze({ FONT: FONT, stylesheet: stylesheet });
})();
