// What traffic shows (monitor/lineage.py): each event type's share of invalid events, and the
// producer -> consumer connections (observed lineage).
// Those the design lacks are listed under "Drift" with "Add to design" for a Designer,
// and drawn on the graph as dashed purple edges (to new nodes when the design has none).
(function (dash) {
  "use strict";
  if (!dash) return;

  const { state } = dash; // state.js
  const { $, setText, busLabel, fmtRate, isNum } = dash; // helpers.js
  const { renderRows } = dash; // tables.js
  const { currentGraph } = dash; // graph.js

  const LIMIT = 50;
  const root = $("monitor");
  const adoptUrl = root ? root.dataset.adoptUrl : "";
  const canDesign = !!(root && root.dataset.canDesign === "true");
  const byKey = new Map();

  function keyOf(e) {
    return [e.bus, e.from, e.event_type || "", e.topic, e.group || ""].join("\u0000");
  }

  function undesigned() {
    return (((state.snapshot || {}).observed || {}).edges || []).filter(function (e) {
      return !e.designed;
    });
  }

  function renderObserved() {
    const edges = undesigned();
    byKey.clear();
    edges.forEach(function (e) {
      byKey.set(keyOf(e), e);
    });
    setText($("observed-count"), edges.length ? String(edges.length) : "");
    renderRows(
      "drift-observed",
      edges,
      keyOf,
      function (e) {
        const cells = [
          { text: e.from, tag: e.producer_designed ? "" : "not designed" },
          { text: e.to || "(no consumer)", tag: e.to && !e.consumer_designed ? "not designed" : "" },
          { text: e.event_type || "(untyped)" },
          { text: e.topic + " · " + busLabel(e.bus) },
          { text: isNum(e.rate) ? fmtRate(e.rate) : "", cls: "num" },
        ];
        if (canDesign) cells.push({ button: e.event_type ? "Add to design" : "", title: e.event_type ? "" : "The events carry no type" });
        return cells;
      },
      LIMIT
    );
    drawOnGraph(edges);
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function adopt(edge, button) {
    button.disabled = true;
    fetch(adoptUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({
        bus: edge.bus,
        topic: edge.topic,
        event_type: edge.event_type,
        producer: edge.from,
        consumer: edge.to || "",
        group: edge.group || "",
      }),
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        const note = $("observed-note");
        if (answer.ok) {
          const made = answer.body.created || [];
          setText(note, made.length ? "Added to the design: " + made.join(", ") + ". Reload to see it on the graph." : "The design had it already.");
        } else {
          const problems = Object.values(answer.body || {}).flat();
          setText(note, "Not added: " + (problems.join(" ") || "the server refused it."));
          button.disabled = false;
        }
      })
      .catch(function () {
        setText($("observed-note"), "Not added: the server did not answer.");
        button.disabled = false;
      });
  }

  const table = $("drift-observed");
  if (table) {
    table.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action=adopt]");
      if (!button) return;
      const edge = byKey.get(button.closest("tr").dataset.key);
      if (edge) adopt(edge, button);
    });
  }

  // Dashed purple edges for what traffic shows and the design lacks; nodes the design does
  // not have (a service, a topic) are added below the designed graph, marked "observed".
  function drawOnGraph(edges) {
    const cy = currentGraph();
    if (!cy) return;
    const wanted = new Map();
    function nodeFor(kind, label, bus, address) {
      // A designed node when there is one; otherwise this call's own "observed" node (kept
      // across ticks by its id: the removal below spares what is wanted again).
      const found = cy.nodes().not(".observed").filter(function (n) {
        if (n.data("kind") !== kind) return false;
        return kind === "topic" ? n.data("bus") === bus && n.data("address") === address : n.data("label") === label;
      });
      if (found.nonempty()) return found[0].id();
      const id = "observed:" + kind + ":" + (kind === "topic" ? bus + ":" + address : label);
      wanted.set(id, { group: "nodes", data: { id: id, kind: kind, label: label, display: label + "\n(observed)", bus: bus || null, address: address || null }, classes: kind + " observed" });
      return id;
    }
    edges.forEach(function (e) {
      const topic = nodeFor("topic", e.topic, e.bus, e.topic);
      if (!e.producer_designed) {
        const id = "observed-edge:" + keyOf(e) + ":p";
        wanted.set(id, { group: "edges", data: { id: id, source: nodeFor("service", e.from), target: topic, overlay: isNum(e.rate) ? fmtRate(e.rate) : "", width: 2 }, classes: "observed" });
      }
      if (e.to && !e.consumer_designed) {
        const id = "observed-edge:" + keyOf(e) + ":c";
        wanted.set(id, { group: "edges", data: { id: id, source: topic, target: nodeFor("service", e.to), overlay: "", width: 2 }, classes: "observed" });
      }
    });
    cy.batch(function () {
      cy.elements(".observed").forEach(function (el) {
        if (!wanted.has(el.id())) el.remove();
      });
      const designed = cy.nodes().not(".observed");
      const box = designed.nonempty() ? designed.boundingBox({ includeLabels: false }) : { x1: 0, y2: 0 };
      let placedCount = cy.nodes(".observed").length;
      wanted.forEach(function (spec, id) {
        if (spec.group !== "nodes" || cy.getElementById(id).nonempty()) return;
        spec.position = { x: box.x1 + 80 + (placedCount % 6) * 180, y: box.y2 + 140 + Math.floor(placedCount / 6) * 90 };
        placedCount += 1;
        cy.add(spec);
      });
      wanted.forEach(function (spec, id) {
        if (spec.group !== "edges") return;
        const edge = cy.getElementById(id);
        if (edge.empty()) cy.add(spec);
        else if (edge.data("overlay") !== spec.data.overlay) edge.data("overlay", spec.data.overlay);
      });
    });
  }

  // Invalid events first (most invalid on top), then the clean types.
  function renderValidity() {
    const rows = ((state.snapshot || {}).validity || []).slice().sort(function (a, b) {
      return b.rate - a.rate || b.events - a.events;
    });
    const failing = rows.filter(function (r) {
      return r.invalid > 0;
    }).length;
    setText($("validity-count"), failing ? String(failing) : "");
    renderRows(
      "validity",
      rows,
      function (r) {
        return r.bus + "\u0000" + r.event_type;
      },
      function (r) {
        return [
          { text: r.event_type },
          { text: busLabel(r.bus) },
          { text: String(r.events), cls: "num" },
          { text: String(r.invalid), cls: "num" + (r.invalid ? " error-text" : "") },
          { text: (100 * r.rate).toFixed(1), cls: "num" },
        ];
      },
      LIMIT
    );
  }

  Object.assign(dash, { renderObserved, renderValidity });
})(window.EventHubDashboard);
