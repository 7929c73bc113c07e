// The design graph with live overlays: Cytoscape, read-only, at the designer's positions;
// edges carry rates, lag and status, topics their rate, services up or down.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state } = dash; // state.js
  const { $, isNum, fmtInt, fmtRate, statusName, rank, busLabel } = dash; // helpers.js
  const { graph } = dash; // scope.js

  // Burrow's statuses as colours, as in the legend under the graph (monitor/_dashboard_graph.html).
  const STATUS_COLOURS = {
    OK: "#1a7f37",
    WARN: "#b7791f",
    ERR: "#c62828",
    STALL: "#c62828",
    REWIND: "#c62828",
    STOP: "#6b1d1d",
    NOTFOUND: "#8a94a3",
  };

  let cy = null;

  function placed(n) {
    return n.x !== null && n.x !== undefined && n.y !== null && n.y !== undefined;
  }

  function initGraph() {
    const container = $("monitor-cy");
    if (!container || container.hidden || !graph.nodes.length || typeof cytoscape === "undefined") return;
    const elements = [];
    graph.nodes.forEach(function (n) {
      const classes = [n.kind];
      if (n.kind === "topic" && n.bus === "redis") classes.push("redis");
      if (n.kind === "event" && n.event_kind === "command") classes.push("command");
      elements.push({
        group: "nodes",
        data: { id: n.id, kind: n.kind, label: n.label, display: n.label, domain: n.domain, bus: n.bus || null, address: n.address || null },
        classes: classes.join(" "),
        position: placed(n) ? { x: n.x, y: n.y } : { x: 0, y: 0 },
      });
    });
    const ids = new Set(graph.nodes.map(function (n) {
      return n.id;
    }));
    graph.edges.forEach(function (e) {
      if (!ids.has(e.source) || !ids.has(e.target)) return;
      elements.push({ group: "edges", data: { id: e.id, kind: e.kind, source: e.source, target: e.target, overlay: "", width: 2 }, classes: e.kind });
    });
    cy = cytoscape({
      container: container,
      elements: elements,
      layout: { name: "preset" },
      autoungrabify: true, // read-only: positions belong to the designer
      boxSelectionEnabled: false,
      wheelSensitivity: 0.3,
      minZoom: 0.15,
      maxZoom: 3,
      // The shared look (static/eventhub/graph_style.js) with fixed-size nodes (their labels
      // change every tick) and live colours. A border's or an edge's colour is a status
      // here, so topics and edges start neutral: green would read as "OK".
      style: EventHubGraphStyle.stylesheet({
        node: { "text-max-width": "130px", "font-size": 11, width: 144 },
        edge: {
          width: "data(width)",
          "line-color": "#b8c0cb",
          "target-arrow-color": "#b8c0cb",
          label: "data(overlay)",
          "font-size": 10,
          "font-family": EventHubGraphStyle.FONT,
          color: "#1c2430",
          "text-background-color": "#ffffff",
          "text-background-opacity": 0.9,
          "text-background-padding": "2px",
          "text-background-shape": "round-rectangle",
        },
        rules: [
          { selector: "node.event", style: { width: 156 } },
          { selector: "node.topic", style: { "border-color": "#8a94a3" } },
          { selector: "node.up", style: { "border-color": STATUS_COLOURS.OK, "border-width": 3 } },
          { selector: "node.down", style: { "border-color": STATUS_COLOURS.ERR, "border-width": 4, "border-style": "dashed" } },
          { selector: "node.absent", style: { "border-style": "dotted", opacity: 0.7 } },
          { selector: "node.st-OK", style: { "border-color": STATUS_COLOURS.OK, "border-width": 3 } },
          { selector: "node.st-WARN", style: { "border-color": STATUS_COLOURS.WARN, "border-width": 4 } },
          { selector: "node.st-ERR, node.st-STALL, node.st-REWIND", style: { "border-color": STATUS_COLOURS.ERR, "border-width": 4 } },
          { selector: "node.st-STOP", style: { "border-color": STATUS_COLOURS.STOP, "border-width": 4 } },
          { selector: "edge.on-topic", style: { "line-color": "#9fd3b0" } },
          { selector: "edge.flowing", style: { "line-color": "#2859c5", "target-arrow-color": "#2859c5" } },
          { selector: "edge.st-OK", style: { "line-color": STATUS_COLOURS.OK, "target-arrow-color": STATUS_COLOURS.OK } },
          { selector: "edge.st-WARN", style: { "line-color": STATUS_COLOURS.WARN, "target-arrow-color": STATUS_COLOURS.WARN } },
          {
            selector: "edge.st-ERR, edge.st-STALL, edge.st-REWIND",
            style: { "line-color": STATUS_COLOURS.ERR, "target-arrow-color": STATUS_COLOURS.ERR },
          },
          { selector: "edge.st-STOP", style: { "line-color": STATUS_COLOURS.STOP, "target-arrow-color": STATUS_COLOURS.STOP } },
          { selector: "edge.silent", style: { "line-style": "dashed", "line-dash-pattern": [6, 4] } },
          // Observed in traffic, not designed (observed.js).
          { selector: "edge.observed", style: { "line-color": "#7b3fb8", "target-arrow-color": "#7b3fb8", "line-style": "dashed", "line-dash-pattern": [4, 4] } },
          { selector: "node.observed", style: { "border-color": "#7b3fb8", "border-style": "dashed", "border-width": 2 } },
          { selector: ".out", style: { display: "none" } },
        ],
      }),
    });
    // Nodes the design has no position for: dagre when nothing is placed, else a row below.
    const unplaced = cy.nodes().filter(function (node) {
      return !placed(graph.nodes.find(function (n) {
        return n.id === node.id();
      }));
    });
    if (unplaced.nonempty()) {
      const rest = cy.nodes().not(unplaced);
      if (rest.empty()) {
        cy.elements().layout({ name: "dagre", rankDir: "LR", nodeSep: 30, rankSep: 90, fit: false, animate: false }).run();
      } else {
        const box = rest.boundingBox({ includeLabels: false });
        unplaced.forEach(function (node, i) {
          node.position({ x: box.x1 + 80 + (i % 6) * 180, y: box.y2 + 100 + Math.floor(i / 6) * 90 });
        });
      }
    }
    filterGraph();
  }

  function fitGraph() {
    if (!cy) return;
    const visible = cy.elements().not(".out");
    if (visible.empty()) return;
    cy.fit(visible, 30);
    if (cy.zoom() > 1.2) {
      cy.zoom(1.2);
      cy.center(visible);
    }
  }

  function filterGraph() {
    if (!cy) return;
    const scope = state.scope;
    cy.batch(function () {
      cy.elements().forEach(function (el) {
        const inside = !scope || (el.isNode() ? scope.nodes.has(el.id()) : scope.edges.has(el.id()));
        el.toggleClass("out", !inside);
      });
    });
    fitGraph();
  }

  function shortRate(v) {
    return isNum(v) ? fmtRate(v) : "";
  }

  // Live numbers on the designed graph: edges carry rate and lag and the group's
  // status; topics their produce rate and their worst group; services up/down.
  function overlayGraph() {
    if (!cy) return;
    const snap = state.snapshot;
    const edges = new Map();
    (snap.edges || []).forEach(function (e) {
      edges.set(String(e.edge_id), e);
    });
    const silent = new Set(
      ((snap.drift || {}).silent_edges || []).map(function (e) {
        return String(e.edge_id);
      })
    );
    const topics = new Map();
    (snap.topics || []).forEach(function (t) {
      topics.set(t.bus + ":" + t.name, t);
    });
    // A topic's worst group: the collector says it on the topic's row (the socket may
    // send one page of the groups only); an older snapshot without it, from the groups.
    const worst = new Map();
    (snap.topics || []).forEach(function (t) {
      if (t.groups_status) worst.set(t.bus + ":" + t.name, statusName(t.groups_status));
    });
    (snap.groups || []).forEach(function (g) {
      const key = g.bus + ":" + g.topic;
      if (!worst.has(key) || rank(g.status) > rank(worst.get(key))) worst.set(key, statusName(g.status));
    });
    const services = new Map();
    (snap.services || []).forEach(function (s) {
      services.set(s.service, s);
    });
    const busUp = new Map();
    (snap.buses || []).forEach(function (b) {
      busUp.set(b.kind, !!b.up);
    });

    cy.batch(function () {
      cy.edges().not(".observed").forEach(function (edge) {
        const kind = edge.data("kind");
        if (kind === "on-topic") return;
        const live = edges.get(edge.id());
        const classes = [kind];
        let text = "";
        let width = 1.5;
        if (live) {
          const rate = isNum(live.rate) ? live.rate : null;
          if (kind === "produces") {
            text = shortRate(rate);
            if (rate > 0) classes.push("flowing");
          } else {
            text = [shortRate(rate), isNum(live.lag) ? "lag " + fmtInt(live.lag) : ""].filter(Boolean).join(" · ");
            if (live.status) classes.push("st-" + statusName(live.status));
          }
          if (rate > 0) width = 1.5 + Math.min(4, Math.log10(1 + rate) * 2);
        }
        if (silent.has(edge.id())) classes.push("silent");
        edge.classes(classes.join(" ") + (edge.hasClass("out") ? " out" : ""));
        if (edge.data("overlay") !== text) edge.data("overlay", text);
        if (edge.data("width") !== width) edge.data("width", width);
      });
      cy.nodes().not(".observed").forEach(function (node) {
        const kind = node.data("kind");
        const base = node.classes().filter(function (c) {
          return c === kind || c === "redis" || c === "command" || c === "out";
        });
        const classes = base.slice();
        let display = node.data("label");
        if (kind === "topic") {
          const key = node.data("bus") + ":" + node.data("address");
          const live = topics.get(key);
          display += "\n" + busLabel(node.data("bus"));
          if (live) {
            if (isNum(live.rate)) display += " · " + fmtRate(live.rate);
            if (worst.has(key)) classes.push("st-" + worst.get(key));
          } else if (busUp.get(node.data("bus"))) {
            classes.push("absent"); // designed, but not on the bus
            display += " · not on the bus";
          }
        } else if (kind === "service") {
          const live = services.get(node.data("label"));
          if (live) {
            classes.push(live.up ? "up" : "down");
            display += "\n" + (live.up ? live.instances + (live.instances === 1 ? " instance" : " instances") : "down");
          }
        }
        node.classes(classes.join(" "));
        if (node.data("display") !== display) node.data("display", display);
      });
    });
  }

  function currentGraph() {
    return cy;
  }

  Object.assign(dash, { initGraph, fitGraph, filterGraph, overlayGraph, currentGraph });
})(window.EventHubDashboard);
