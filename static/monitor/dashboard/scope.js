// The domain filter: which nodes, edges, topics and services of the design are in view.
// The design graph arrives once, embedded in the page (json_script "monitor-graph").
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state } = dash; // state.js
  const { $, readJson } = dash; // helpers.js

  const graph = readJson("monitor-graph") || { nodes: [], edges: [] };
  const domainSelect = $("monitor-domain");

  function computeScope() {
    state.domain = domainSelect ? domainSelect.value : "";
    if (!state.domain) {
      state.scope = null;
      return;
    }
    // The same rule as designer.graph.build_graph(domain): the domain's nodes, the
    // edges touching them, and the nodes at the other end of those edges.
    const inside = new Set();
    graph.nodes.forEach(function (n) {
      if (n.domain === state.domain) inside.add(n.id);
    });
    const keep = new Set(inside);
    const edges = new Set();
    graph.edges.forEach(function (e) {
      if (inside.has(e.source) || inside.has(e.target)) {
        keep.add(e.source);
        keep.add(e.target);
        edges.add(e.id);
      }
    });
    const topics = new Set();
    const services = new Set();
    graph.nodes.forEach(function (n) {
      if (!keep.has(n.id)) return;
      if (n.kind === "topic") topics.add(n.bus + ":" + n.address);
      if (n.kind === "service") services.add(n.label);
    });
    state.scope = { nodes: keep, edges: edges, topics: topics, services: services };
  }

  function topicInScope(bus, name) {
    return !state.scope || state.scope.topics.has(bus + ":" + name);
  }

  Object.assign(dash, { graph, domainSelect, computeScope, topicInScope });
})(window.EventHubDashboard);
