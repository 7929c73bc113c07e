// The designer canvas: services, events and topics on a Cytoscape graph,
// edited through the REST API (/api/v1/).
//
// How it is put together:
// - The server renders the graph once (json_script "graph-data"); after every
//   change the canvas re-reads GET /api/v1/graph/ and reconciles, so lints and
//   anything computed on the server stay true without client-side copies.
// - Every change is one `enqueue`d async step (no two requests race), and
//   pushes its inverse onto the undo stack. Re-creating a deleted row gives it
//   a new id; `remap` records old graph id -> new one so older undo entries
//   still find their rows.
// - Connecting is "connect mode": drag from a node to another node.
// - User text only ever reaches the DOM through textContent / Option(); the
//   canvas itself draws text on a <canvas>, so no markup is involved there.
(function () {
  "use strict";

  const root = document.getElementById("designer");
  if (!root) return;
  const canDesign = root.dataset.canDesign === "true";
  const urls = {
    graph: root.dataset.graphUrl,
    service: root.dataset.servicesUrl,
    event: root.dataset.eventsUrl,
    topic: root.dataset.topicsUrl,
    producer: root.dataset.producersUrl,
    consumer: root.dataset.consumersUrl,
  };
  const KIND_NAMES = { service: "service", event: "event", topic: "topic" };
  const MAX_LABEL = 60;
  const statusLine = document.getElementById("designer-status");
  const domainSelect = document.getElementById("domain-filter");

  const state = {
    domain: domainSelect.value,
    graph: null,
    selected: null, // graph id of the node or edge shown in the side panel
    record: null, // the API record of the selected node, as last read
    connecting: false,
    drag: null,
  };

  // ------------------------------------------------------------------ the API
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body) {
    const init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "The server did not answer (" + err.message + ")." } };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (err) {
        data = { detail: response.status + " " + response.statusText };
      }
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function detailUrl(kind, pk) {
    return urls[kind] + pk + "/";
  }

  function graphUrl(domain) {
    return domain ? urls.graph + "?domain=" + encodeURIComponent(domain) : urls.graph;
  }

  // A DRF error body ({"field": ["msg"]} or {"detail": "msg"}) as one sentence.
  function errorText(data) {
    if (!data) return "Something went wrong.";
    if (typeof data.detail === "string") return data.detail;
    const parts = [];
    Object.keys(data).forEach(function (key) {
      const value = Array.isArray(data[key]) ? data[key].join(" ") : String(data[key]);
      parts.push(key === "non_field_errors" ? value : key + ": " + value);
    });
    return parts.join(" ") || "Something went wrong.";
  }

  function setStatus(message, isError) {
    statusLine.textContent = message || "";
    statusLine.classList.toggle("error", !!isError);
  }

  // One change at a time, in order: drag ends, saves and undos never interleave.
  let queue = Promise.resolve();
  let moveTimer = null; // a drag end waiting to be saved (see "moving nodes")
  function enqueue(step) {
    queue = queue.then(step).catch(function (err) {
      setStatus("Unexpected error: " + (err && err.message ? err.message : err), true);
    });
    return queue;
  }

  // ------------------------------------------------------------------ ids and undo
  const remap = new Map();
  function current(graphId) {
    let id = graphId;
    const seen = new Set();
    while (remap.has(id) && !seen.has(id)) {
      seen.add(id);
      id = remap.get(id);
    }
    return id;
  }
  function pkOf(graphId) {
    return Number(current(graphId).split(":")[1]);
  }
  function kindOf(graphId) {
    return graphId.split(":")[0];
  }

  const undoStack = [];
  const undoButton = document.getElementById("undo");
  function pushUndo(label, run) {
    undoStack.push({ label: label, run: run });
    if (undoStack.length > 200) undoStack.shift();
    updateUndoButton();
  }
  function updateUndoButton() {
    if (!undoButton) return;
    const last = undoStack[undoStack.length - 1];
    undoButton.disabled = !last;
    undoButton.title = last ? "Undo " + last.label + " (Ctrl+Z)" : "Nothing to undo";
  }
  function undo() {
    if (!canDesign) return;
    enqueue(async function () {
      const entry = undoStack.pop();
      updateUndoButton();
      if (!entry) {
        setStatus("Nothing to undo.");
        return;
      }
      setStatus("Undoing " + entry.label + "…");
      const problem = await entry.run();
      await refresh();
      if (problem) setStatus("Could not undo " + entry.label + ": " + problem, true);
      else setStatus("Undid " + entry.label + ".");
    });
  }

  // ------------------------------------------------------------------ cytoscape
  const cy = cytoscape({
    container: document.getElementById("cy"),
    wheelSensitivity: 0.3,
    minZoom: 0.15,
    maxZoom: 3,
    autoungrabify: !canDesign,
    boxSelectionEnabled: false,
    // The shared look (static/eventhub/graph_style.js) plus what editing needs: nodes as
    // wide as their label, edges coloured by kind, lint outlines, selection, drop targets
    // and the ghost edge of connect mode.
    style: EventHubGraphStyle.stylesheet({
      node: {
        "text-max-width": "data(width)",
        "text-overflow-wrap": "anywhere",
        "font-size": 13,
        width: "data(width)",
      },
      edge: { "arrow-scale": 1.1 },
      rules: [
        { selector: "node.lint-info", style: { "outline-width": 3, "outline-color": "#8a94a3", "outline-style": "dotted" } },
        { selector: "node.lint-warning", style: { "outline-width": 3, "outline-color": "#b7791f", "outline-style": "dashed" } },
        { selector: "node.lint-error", style: { "outline-width": 3, "outline-color": "#c62828", "outline-style": "dashed" } },
        { selector: "node:selected", style: { "border-width": 4, "border-color": "#16202e" } },
        { selector: "node.drop-ok", style: { "border-width": 5, "border-color": "#1a7f37" } },
        { selector: "node.drop-bad", style: { "border-width": 5, "border-color": "#c62828" } },
        { selector: "edge.produces", style: { "line-color": "#2859c5", "target-arrow-color": "#2859c5" } },
        { selector: "edge.consumes", style: { "line-color": "#c05621", "target-arrow-color": "#c05621" } },
        { selector: "edge:selected", style: { width: 4, "line-color": "#16202e", "target-arrow-color": "#16202e" } },
        { selector: "node.ghost", style: { width: 1, height: 1, opacity: 0, label: "" } },
        {
          selector: "edge.ghost",
          style: { "line-style": "dashed", "line-color": "#16202e", "target-arrow-color": "#16202e", width: 2 },
        },
      ],
    }),
  });
  // Cytoscape maps every pointer event through a cached copy of where its container sits
  // on the page, refreshed on window resize and scroll only. The new-node form (and its
  // errors) and the status line sit above the canvas: when they open, close or wrap, the
  // canvas moves and every press lands as far off as it moved (a drag from a new node
  // starts on empty canvas, a click selects nothing). cy.resize() is Cytoscape's call
  // for "the container moved": make it whenever something above the canvas changes height.
  const aboveCanvas = new ResizeObserver(function () {
    cy.resize();
  });
  for (let el = cy.container().parentElement.previousElementSibling; el; el = el.previousElementSibling) {
    aboveCanvas.observe(el);
  }
  // For debugging and the browser tests: the Cytoscape instance and a snapshot.
  window.eventhubCanvas = {
    cy: cy,
    // Resolves once no change is queued or about to be (a drag end saves on the next tick).
    idle: async function () {
      for (;;) {
        const seen = queue;
        await seen;
        await new Promise(function (resolve) {
          setTimeout(resolve, 0);
        });
        if (seen === queue && moveTimer === null) return true;
      }
    },
  };

  function shortLabel(text) {
    const flat = String(text || "").replace(/\s+/g, " ").trim() || "(no name)";
    return flat.length > MAX_LABEL ? flat.slice(0, MAX_LABEL - 1) + "…" : flat;
  }

  function severities(graph) {
    const order = { info: 1, warning: 2, error: 3 };
    const worst = new Map();
    (graph.lints || []).forEach(function (lint) {
      (lint.node_ids || []).forEach(function (id) {
        const was = worst.get(id);
        if (!was || order[lint.severity] > order[was]) worst.set(id, lint.severity);
      });
    });
    return worst;
  }

  function nodeData(node, severity) {
    const lints = node.lints || [];
    let display = shortLabel(node.label);
    if (node.kind === "topic") display += "\n" + (node.bus === "redis" ? "Redis stream" : "Kafka");
    if (lints.length) display += "\n⚠ " + lints.length + (lints.length === 1 ? " lint" : " lints");
    const classes = [node.kind];
    if (node.kind === "event" && node.event_kind === "command") classes.push("command");
    if (node.kind === "topic" && node.bus === "redis") classes.push("redis");
    if (lints.length) classes.push("lint-" + (severity || "warning"));
    // Wide enough for the longest line of the label (Cytoscape cannot size a node to its text).
    const longest = display.split("\n").reduce(function (max, line) {
      return Math.max(max, line.length);
    }, 0);
    const pad = node.kind === "event" ? 48 : 24; // an ellipse has less room at its sides
    const width = Math.min(300, Math.max(110, pad + longest * 7.6));
    return {
      data: {
        width: width,
        id: node.id,
        kind: node.kind,
        pk: node.pk,
        label: node.label,
        display: display,
        bus: node.bus || null,
        eventKind: node.event_kind || null,
        domain: node.domain,
        lints: lints,
      },
      classes: classes.join(" "),
    };
  }

  function applyGraph(graph) {
    state.graph = graph;
    const worst = severities(graph);
    const wanted = new Set();
    graph.nodes.forEach(function (n) {
      wanted.add(n.id);
    });
    graph.edges.forEach(function (e) {
      wanted.add(e.id);
    });
    const unplaced = [];
    cy.batch(function () {
      cy.elements().forEach(function (el) {
        if (!wanted.has(el.id()) && !el.hasClass("ghost")) el.remove();
      });
      graph.nodes.forEach(function (node) {
        const built = nodeData(node, worst.get(node.id));
        const existing = cy.getElementById(node.id);
        const placed = node.x !== null && node.x !== undefined && node.y !== null && node.y !== undefined;
        if (existing.nonempty()) {
          const update = Object.assign({}, built.data);
          delete update.id; // Cytoscape ids are immutable
          existing.data(update);
          existing.classes(built.classes);
          if (placed && !existing.grabbed()) {
            const p = existing.position();
            if (Math.abs(p.x - node.x) > 0.5 || Math.abs(p.y - node.y) > 0.5) existing.position({ x: node.x, y: node.y });
          }
        } else {
          const added = cy.add({
            group: "nodes",
            data: built.data,
            classes: built.classes,
            position: placed ? { x: node.x, y: node.y } : { x: 0, y: 0 },
          });
          if (!placed) unplaced.push(added);
        }
      });
      graph.edges.forEach(function (edge) {
        const existing = cy.getElementById(edge.id);
        const data = { id: edge.id, kind: edge.kind, pk: edge.pk, source: edge.source, target: edge.target };
        if (existing.nonempty()) {
          if (existing.data("source") !== edge.source || existing.data("target") !== edge.target) {
            existing.remove();
          } else {
            return;
          }
        }
        if (cy.getElementById(edge.source).nonempty() && cy.getElementById(edge.target).nonempty()) {
          cy.add({ group: "edges", data: data, classes: edge.kind });
        }
      });
    });
    placeUnplaced(cy.collection(unplaced));
    renderOutline();
    if (state.selected && cy.getElementById(state.selected).empty()) clearSelection();
    else if (state.selected && kindOf(state.selected) in KIND_NAMES) renderLints(cy.getElementById(state.selected));
    if (flowchartPanel && flowchartPanel.open) scheduleFlowchart();
  }

  // Nodes the server has no position for: a dagre layout when nothing is placed
  // yet, otherwise a row under what is. Not saved until the user moves them.
  function placeUnplaced(nodes) {
    if (nodes.empty()) return;
    const placed = cy.nodes().not(nodes).not(".ghost");
    if (placed.empty()) {
      runDagre(cy.elements().not(".ghost"));
      return;
    }
    const box = placed.boundingBox({ includeLabels: false });
    nodes.forEach(function (node, i) {
      node.position({ x: box.x1 + 80 + (i % 6) * 180, y: box.y2 + 100 + Math.floor(i / 6) * 90 });
    });
  }

  function runDagre(eles) {
    return new Promise(function (resolve) {
      const layout = eles.layout({
        name: "dagre",
        rankDir: "LR",
        nodeSep: 22,
        rankSep: 60,
        edgeSep: 12,
        fit: false,
        animate: false,
        // Topics hang off their events; a lighter weight keeps producer -> event -> consumer straight.
        edgeWeight: function (edge) {
          return edge.data("kind") === "on-topic" ? 0.2 : 1;
        },
      });
      layout.one("layoutstop", resolve);
      layout.run();
    });
  }

  function fit() {
    const eles = cy.elements().not(".ghost");
    if (eles.empty()) return;
    cy.fit(eles, 40);
    if (cy.zoom() > 1.2) {
      cy.zoom(1.2);
      cy.center(eles);
    }
  }

  async function refresh() {
    const response = await api("GET", graphUrl(state.domain));
    if (!response.ok) {
      setStatus("Could not reload the design: " + errorText(response.data), true);
      return false;
    }
    applyGraph(response.data);
    return true;
  }

  async function fullGraph() {
    const response = await api("GET", graphUrl(""));
    return response.ok ? response.data : null;
  }

  // ------------------------------------------------------------------ list view (accessible text twin of the canvas)
  const outlineNodes = document.getElementById("outline-nodes");
  const outlineEdges = document.getElementById("outline-edges");
  const VERBS = { produces: "produces", consumes: "is consumed by", "on-topic": "is on topic" };

  function renderOutline() {
    const nodes = cy
      .nodes()
      .not(".ghost")
      .sort(function (a, b) {
        return (a.data("kind") + a.data("label")).localeCompare(b.data("kind") + b.data("label"));
      });
    outlineNodes.replaceChildren();
    nodes.forEach(function (node) {
      const li = document.createElement("li");
      li.dataset.nodeId = node.id();
      const button = document.createElement("button");
      button.type = "button";
      button.className = "linklike";
      const kind = node.data("kind");
      let label = kind.charAt(0).toUpperCase() + kind.slice(1) + ": " + node.data("label");
      if (kind === "topic") label += " (" + node.data("bus") + ")";
      button.textContent = label;
      button.addEventListener("click", function () {
        selectElement(node.id(), true);
      });
      li.appendChild(button);
      const lints = node.data("lints") || [];
      if (lints.length) {
        const span = document.createElement("span");
        span.className = "lints";
        span.textContent = " ⚠ " + lints.join(" ");
        li.appendChild(span);
      }
      outlineNodes.appendChild(li);
    });
    outlineEdges.replaceChildren();
    cy.edges()
      .not(".ghost")
      .forEach(function (edge) {
        const li = document.createElement("li");
        li.dataset.edgeId = edge.id();
        li.dataset.kind = edge.data("kind");
        li.textContent = describeEdge(edge);
        outlineEdges.appendChild(li);
      });
  }

  function describeEdge(edge) {
    const source = edge.source().data("label");
    const target = edge.target().data("label");
    if (edge.data("kind") === "consumes") return target + " consumes " + source;
    return source + " " + VERBS[edge.data("kind")] + " " + target;
  }

  // ------------------------------------------------------------------ selection and the side panel
  const nodeForm = document.getElementById("node-form");
  const panelEmpty = document.getElementById("panel-empty");
  const edgePanel = document.getElementById("edge-panel");
  const choices = { services: null, topics: null, domains: null };

  function clearSelection() {
    state.selected = null;
    state.record = null;
    nodeForm.hidden = true;
    edgePanel.hidden = true;
    panelEmpty.hidden = false;
  }

  function selectElement(id, center) {
    const el = cy.getElementById(id);
    if (el.empty()) return;
    cy.elements().unselect();
    el.select();
    if (center) cy.animate({ center: { eles: el }, duration: 200 });
  }

  cy.on("select", "node, edge", function (evt) {
    if (evt.target.hasClass("ghost")) return;
    if (evt.target.isNode()) showNode(evt.target);
    else showEdge(evt.target);
  });
  cy.on("unselect", "node, edge", function () {
    // Deferred: selecting another element unselects this one first.
    setTimeout(function () {
      if (cy.$(":selected").empty()) clearSelection();
    }, 0);
  });
  cy.on("dbltap", "node", function (evt) {
    if (!canDesign || evt.target.hasClass("ghost")) return;
    selectElement(evt.target.id());
    setTimeout(function () {
      const name = document.getElementById("f-name");
      name.focus();
      name.select();
    }, 50);
  });

  function listOf(data) {
    return Array.isArray(data) ? data : data && Array.isArray(data.results) ? data.results : [];
  }

  async function loadChoices() {
    const wanted = [];
    if (!choices.services) wanted.push(["services", urls.service + "?limit=10000"]);
    if (!choices.topics) wanted.push(["topics", urls.topic + "?limit=10000"]);
    if (!choices.domains) wanted.push(["domains", root.dataset.domainsUrl + "?limit=10000"]);
    await Promise.all(
      wanted.map(async function (pair) {
        const response = await api("GET", pair[1]);
        if (response.ok) choices[pair[0]] = listOf(response.data);
      })
    );
  }

  function fillSelect(select, rows, value) {
    const blank = new Option("—", "");
    select.replaceChildren(blank);
    (rows || []).forEach(function (row) {
      select.appendChild(new Option(row.name, String(row.id)));
    });
    select.value = value === null || value === undefined ? "" : String(value);
  }

  function showOnly(container, kind) {
    container.querySelectorAll("[data-only]").forEach(function (el) {
      el.hidden = el.dataset.only !== kind;
    });
  }

  function clearErrors(container) {
    container.querySelectorAll("[data-error-for]").forEach(function (el) {
      el.textContent = "";
    });
  }

  // Field errors next to their fields; anything without a slot goes to the form's general line.
  function showErrors(container, data) {
    clearErrors(container);
    const general = container.querySelector('[data-error-for="non_field_errors"]');
    Object.keys(data || {}).forEach(function (key) {
      const value = data[key];
      const text = Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : JSON.stringify(value);
      const slot = container.querySelector('[data-error-for="' + CSS.escape(key) + '"]');
      const visible = slot && !slot.closest("[hidden]");
      if (visible) slot.textContent = text;
      else if (general) general.textContent = (general.textContent ? general.textContent + " " : "") + (key === "non_field_errors" || key === "detail" ? text : key + ": " + text);
    });
  }

  async function showNode(node) {
    const id = node.id();
    const kind = node.data("kind");
    state.selected = id;
    state.record = null;
    panelEmpty.hidden = true;
    edgePanel.hidden = true;
    nodeForm.hidden = false;
    nodeForm.dataset.kind = kind;
    showOnly(nodeForm, kind);
    clearErrors(nodeForm);
    document.getElementById("panel-kind").textContent = kind === "event" && node.data("eventKind") === "command" ? "command" : kind;
    document.getElementById("panel-title").textContent = node.data("label");
    renderLints(node);
    const [response] = await Promise.all([api("GET", detailUrl(kind, node.data("pk"))), loadChoices()]);
    if (state.selected !== id) return; // another node was selected meanwhile
    if (!response.ok) {
      showErrors(nodeForm, response.data);
      return;
    }
    state.record = response.data;
    fillNodeForm(kind, response.data);
  }

  function fillNodeForm(kind, record) {
    nodeForm.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (field) {
      if (field.closest("[hidden]")) return;
      const value = record[field.name];
      if (field.dataset.type === "ref") {
        fillSelect(field, choices[field.dataset.choices], value);
      } else {
        field.value = value === null || value === undefined ? "" : String(value);
      }
    });
    const link = document.getElementById("panel-catalog-link");
    let href = "";
    if (kind === "service" && record.slug) href = root.dataset.catalogServiceUrl.replace("__slug__", encodeURIComponent(record.slug));
    if (kind === "event") href = root.dataset.catalogEventUrl.replace("__name__", encodeURIComponent(record.name));
    if (kind === "topic") href = root.dataset.catalogTopicUrl.replace(/0\/$/, record.id + "/");
    link.hidden = !href;
    if (href) link.href = href;
  }

  function renderLints(node) {
    const lints = node.data("lints") || [];
    const section = document.getElementById("panel-lints");
    const list = document.getElementById("panel-lint-list");
    list.replaceChildren();
    lints.forEach(function (message) {
      const li = document.createElement("li");
      li.textContent = message;
      list.appendChild(li);
    });
    section.hidden = lints.length === 0;
  }

  function formValues(form) {
    const values = {};
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (field) {
      if (field.closest("[hidden]")) return;
      let value = field.value;
      if (field.dataset.type === "ref" || field.dataset.type === "int") value = value === "" ? null : Number(value);
      values[field.name] = value;
    });
    return values;
  }

  // A field that points at another row, as a graph id, so undo can follow re-creations.
  const REFS = { owner: "service", topic: "topic" };
  function refValue(field, value) {
    if (REFS[field] && value !== null && value !== undefined) return pkOf(REFS[field] + ":" + value);
    return value;
  }

  nodeForm.addEventListener("submit", function (evt) {
    evt.preventDefault();
    if (!canDesign || !state.selected || !state.record) return;
    const id = state.selected;
    const kind = kindOf(id);
    const before = state.record;
    const values = formValues(nodeForm);
    const patch = {};
    const inverse = {};
    Object.keys(values).forEach(function (key) {
      const old = before[key] === undefined ? null : before[key];
      const same = values[key] === old || (values[key] === "" && old === null);
      if (!same) {
        patch[key] = values[key];
        inverse[key] = old;
      }
    });
    if (!Object.keys(patch).length) {
      setStatus("Nothing changed.");
      return;
    }
    enqueue(async function () {
      const response = await api("PATCH", detailUrl(kind, pkOf(id)), patch);
      if (!response.ok) {
        showErrors(nodeForm, response.data);
        setStatus("Not saved: see the errors next to the fields.", true);
        return;
      }
      clearErrors(nodeForm);
      state.record = response.data;
      if ("name" in patch) choices.services = choices.topics = null;
      document.getElementById("panel-title").textContent = response.data.name;
      const label = (patch.name !== undefined ? "rename of " : "edit of ") + before.name;
      pushUndo(label, async function () {
        const body = {};
        Object.keys(inverse).forEach(function (key) {
          body[key] = refValue(key, inverse[key]);
        });
        const r = await api("PATCH", detailUrl(kind, pkOf(id)), body);
        choices.services = choices.topics = null;
        if (state.selected === current(id)) showNode(cy.getElementById(current(id)));
        return r.ok ? null : errorText(r.data);
      });
      setStatus("Saved " + response.data.name + ".");
      await refresh();
    });
  });

  function showEdge(edge) {
    state.selected = edge.id();
    panelEmpty.hidden = true;
    nodeForm.hidden = true;
    edgePanel.hidden = false;
    document.getElementById("edge-description").textContent = describeEdge(edge);
    document.getElementById("edge-error").textContent = "";
  }

  // ------------------------------------------------------------------ confirm dialog
  function confirmAction(message, okLabel) {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-message").textContent = message;
    document.getElementById("confirm-ok").textContent = okLabel || "Delete";
    return new Promise(function (resolve) {
      dialog.addEventListener(
        "close",
        function () {
          resolve(dialog.returnValue === "ok");
        },
        { once: true }
      );
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  // ------------------------------------------------------------------ creating nodes
  const newForm = document.getElementById("new-node-form");
  let newCount = 0;

  function selectedDomainId() {
    const option = domainSelect.selectedOptions[0];
    return option && option.dataset.id ? Number(option.dataset.id) : null;
  }

  function openNewForm(kind) {
    newForm.hidden = false;
    newForm.elements.kind.value = kind;
    document.getElementById("new-node-title").textContent = "New " + kind;
    showOnly(newForm, kind);
    clearErrors(newForm);
    newForm.elements.name.value = "";
    newForm.elements.name.placeholder = kind === "event" ? "order.placed" : kind === "topic" ? "orders" : "orders-service";
    newForm.elements.name.focus();
  }

  function closeNewForm() {
    newForm.hidden = true;
    clearErrors(newForm);
  }

  // The free spot nearest the middle of the view, so a new node never lands on another.
  function newPosition() {
    const box = cy.extent();
    const center = { x: (box.x1 + box.x2) / 2, y: (box.y1 + box.y2) / 2 };
    const taken = cy
      .nodes()
      .not(".ghost")
      .map(function (node) {
        return node.boundingBox({ includeLabels: false });
      });
    const W = 190;
    const H = 80;
    function free(p) {
      return taken.every(function (b) {
        return p.x + W / 2 < b.x1 || p.x - W / 2 > b.x2 || p.y + H / 2 < b.y1 || p.y - H / 2 > b.y2;
      });
    }
    for (let ring = 0; ring < 30; ring++) {
      for (let dx = -ring; dx <= ring; dx++) {
        for (let dy = -ring; dy <= ring; dy++) {
          if (Math.max(Math.abs(dx), Math.abs(dy)) !== ring) continue;
          const p = { x: Math.round(center.x + dx * W), y: Math.round(center.y + dy * H) };
          if (free(p)) return p;
        }
      }
    }
    newCount += 1;
    return { x: Math.round(center.x + newCount * 20), y: Math.round(center.y + newCount * 20) };
  }

  if (newForm) {
    document.querySelectorAll("[data-new]").forEach(function (button) {
      button.addEventListener("click", function () {
        openNewForm(button.dataset.new);
      });
    });
    newForm.querySelector('[data-action="cancel"]').addEventListener("click", closeNewForm);
    newForm.addEventListener("submit", function (evt) {
      evt.preventDefault();
      const kind = newForm.elements.kind.value;
      const body = { name: newForm.elements.name.value.trim() };
      if (kind === "event") body.kind = newForm.elements.event_kind.value;
      if (kind === "topic") body.bus = newForm.elements.bus.value;
      const domain = selectedDomainId();
      if (domain) body.domain = domain;
      Object.assign(body, newPosition());
      enqueue(async function () {
        const response = await api("POST", urls[kind], body);
        if (!response.ok) {
          showErrors(newForm, response.data);
          setStatus("Not added: see the errors in the form.", true);
          return;
        }
        closeNewForm();
        choices.services = choices.topics = null;
        const id = kind + ":" + response.data.id;
        pushUndo("adding " + response.data.name, async function () {
          const r = await api("DELETE", detailUrl(kind, pkOf(id)));
          choices.services = choices.topics = null;
          return r.ok || r.status === 404 ? null : errorText(r.data);
        });
        setStatus("Added " + kind + " " + response.data.name + ".");
        await refresh();
        selectElement(id);
      });
    });
  }

  // ------------------------------------------------------------------ deleting nodes (undo re-creates them)
  const READ_ONLY_FIELDS = ["id", "slug", "latest_version"];

  async function deleteNode(id) {
    const node = cy.getElementById(id);
    if (node.empty()) return;
    const kind = node.data("kind");
    const name = node.data("label");
    const warning =
      kind === "event"
        ? " Its producers and consumers go with it. Undo restores them; an event with registered schemas can only be deleted by an admin."
        : kind === "topic"
          ? " Its events stay, without a topic."
          : " Its produce and consume connections go with it.";
    if (!(await confirmAction("Delete the " + kind + " “" + name + "”?" + warning))) return;
    enqueue(async function () {
      // What undo needs: the row, every connection (also those outside the domain filter), consumer settings.
      const record = await api("GET", detailUrl(kind, pkOf(id)));
      const graph = await fullGraph();
      if (!record.ok || !graph) {
        setStatus("Not deleted: could not read " + name + " first.", true);
        return;
      }
      const edges = graph.edges.filter(function (e) {
        return e.source === current(id) || e.target === current(id);
      });
      const consumerRecords = {};
      for (const edge of edges) {
        if (edge.kind === "consumes") {
          const r = await api("GET", detailUrl("consumer", edge.pk));
          if (r.ok) consumerRecords[edge.id] = r.data;
        }
      }
      const response = await api("DELETE", detailUrl(kind, pkOf(id)));
      if (!response.ok) {
        setStatus("Not deleted: " + errorText(response.data), true);
        return;
      }
      choices.services = choices.topics = null;
      const oldId = current(id);
      pushUndo("deleting " + name, function () {
        return recreate(kind, oldId, record.data, edges, consumerRecords);
      });
      setStatus("Deleted " + kind + " " + name + ". Ctrl+Z brings it back.");
      clearSelection();
      await refresh();
    });
  }

  async function recreate(kind, oldId, record, edges, consumerRecords) {
    const graph = await fullGraph();
    const exists = new Set((graph ? graph.nodes : []).map(function (n) {
      return n.id;
    }));
    const body = {};
    Object.keys(record).forEach(function (key) {
      if (READ_ONLY_FIELDS.indexOf(key) === -1) body[key] = record[key];
    });
    // References to rows that were themselves deleted (and not restored) are dropped.
    ["owner", "topic"].forEach(function (key) {
      if (body[key] !== null && body[key] !== undefined) {
        const ref = current(REFS[key] + ":" + body[key]);
        body[key] = exists.has(ref) ? pkOf(ref) : null;
      }
    });
    const created = await api("POST", urls[kind], body);
    if (!created.ok) return errorText(created.data);
    const newId = kind + ":" + created.data.id;
    remap.set(oldId, newId);
    choices.services = choices.topics = null;
    const problems = [];
    for (const edge of edges) {
      const source = edge.source === oldId ? newId : current(edge.source);
      const target = edge.target === oldId ? newId : current(edge.target);
      if ((source !== newId && !exists.has(source)) || (target !== newId && !exists.has(target))) continue;
      let r = null;
      if (edge.kind === "produces") {
        r = await api("POST", urls.producer, { service: pkOf(source), event_type: pkOf(target) });
        if (r.ok) remap.set(edge.id, "producer:" + r.data.id);
      } else if (edge.kind === "consumes") {
        const settings = Object.assign({}, consumerRecords[edge.id] || {});
        delete settings.id;
        settings.service = pkOf(target);
        settings.event_type = pkOf(source);
        r = await api("POST", urls.consumer, settings);
        if (r.ok) remap.set(edge.id, "consumer:" + r.data.id);
      } else if (edge.kind === "on-topic" && kind === "topic") {
        r = await api("PATCH", detailUrl("event", pkOf(source)), { topic: pkOf(newId) });
      }
      if (r && !r.ok) problems.push(errorText(r.data));
    }
    return problems.length ? problems.join(" ") : null;
  }

  // ------------------------------------------------------------------ connections
  // What dragging from `source` onto `target` means, or null when it means nothing.
  function connectionFor(source, target) {
    const a = source.data("kind");
    const b = target.data("kind");
    if (a === "service" && b === "event") return { kind: "produces", service: source, event: target };
    if (a === "event" && b === "service") return { kind: "consumes", service: target, event: source };
    if (a === "event" && b === "topic") return { kind: "on-topic", event: source, topic: target };
    if (a === "topic" && b === "event") return { kind: "on-topic", event: target, topic: source };
    return null;
  }

  function topicOf(eventId) {
    const edge = cy.edges('[kind = "on-topic"]').filter(function (e) {
      return e.data("source") === eventId;
    });
    return edge.nonempty() ? edge.data("target") : null;
  }

  function connect(source, target) {
    const link = connectionFor(source, target);
    if (!link) {
      setStatus(
        "Connect a service to an event (produces), an event to a service (consumes), or an event to a topic.",
        true
      );
      return;
    }
    enqueue(async function () {
      const serviceName = link.service ? link.service.data("label") : "";
      const eventName = link.event.data("label");
      if (link.kind === "on-topic") {
        const eventId = link.event.id();
        const before = topicOf(eventId);
        const r = await api("PATCH", detailUrl("event", pkOf(eventId)), { topic: pkOf(link.topic.id()) });
        if (!r.ok) return setStatus("Not connected: " + errorText(r.data), true);
        pushUndo("putting " + eventName + " on " + link.topic.data("label"), async function () {
          const back = await api("PATCH", detailUrl("event", pkOf(eventId)), { topic: before ? pkOf(before) : null });
          return back.ok ? null : errorText(back.data);
        });
        setStatus(eventName + " is now on topic " + link.topic.data("label") + ".");
      } else {
        const body = { service: pkOf(link.service.id()), event_type: pkOf(link.event.id()) };
        const r = await api("POST", urls[link.kind === "produces" ? "producer" : "consumer"], body);
        if (!r.ok) return setStatus("Not connected: " + errorText(r.data), true);
        const edgeId = (link.kind === "produces" ? "producer:" : "consumer:") + r.data.id;
        const verb = link.kind === "produces" ? " produces " : " consumes ";
        pushUndo("connecting " + serviceName + verb + eventName, async function () {
          const back = await api("DELETE", detailUrl(kindOf(current(edgeId)), pkOf(edgeId)));
          return back.ok || back.status === 404 ? null : errorText(back.data);
        });
        setStatus(serviceName + verb + eventName + ".");
      }
      await refresh();
    });
  }

  function deleteEdge(edge) {
    const kind = edge.data("kind");
    const description = describeEdge(edge);
    enqueue(async function () {
      const edgeId = edge.id();
      if (kind === "on-topic") {
        const eventId = edge.data("source");
        const topicId = edge.data("target");
        const r = await api("PATCH", detailUrl("event", pkOf(eventId)), { topic: null });
        if (!r.ok) return setStatus("Not removed: " + errorText(r.data), true);
        pushUndo("removing “" + description + "”", async function () {
          const back = await api("PATCH", detailUrl("event", pkOf(eventId)), { topic: pkOf(topicId) });
          return back.ok ? null : errorText(back.data);
        });
      } else {
        const resource = kind === "produces" ? "producer" : "consumer";
        const record = await api("GET", detailUrl(resource, pkOf(edgeId)));
        const r = await api("DELETE", detailUrl(resource, pkOf(edgeId)));
        if (!r.ok) return setStatus("Not removed: " + errorText(r.data), true);
        const service = kind === "produces" ? edge.data("source") : edge.data("target");
        const event = kind === "produces" ? edge.data("target") : edge.data("source");
        const oldEdgeId = current(edgeId);
        pushUndo("removing “" + description + "”", async function () {
          const body = Object.assign({}, record.ok ? record.data : {});
          delete body.id;
          body.service = pkOf(service);
          body.event_type = pkOf(event);
          const back = await api("POST", urls[resource], body);
          if (back.ok) remap.set(oldEdgeId, resource + ":" + back.data.id);
          return back.ok ? null : errorText(back.data);
        });
      }
      setStatus("Removed: " + description + ".");
      clearSelection();
      await refresh();
    });
  }

  // Connect mode: press on a node, drag onto another, release. A ghost edge follows the pointer.
  const connectButton = document.getElementById("connect-mode");
  function setConnectMode(on) {
    state.connecting = on && canDesign;
    root.classList.toggle("connecting", state.connecting);
    if (connectButton) connectButton.setAttribute("aria-pressed", String(state.connecting));
    cy.autoungrabify(state.connecting || !canDesign);
    cy.userPanningEnabled(!state.connecting);
    if (state.connecting) setStatus("Connect mode: drag from a node to another node. Esc or C to leave.");
    else if (!state.drag) setStatus("");
  }

  function nodeAt(position) {
    let found = null;
    cy.nodes()
      .not(".ghost")
      .forEach(function (node) {
        const box = node.boundingBox({ includeLabels: false, includeOverlays: false });
        if (position.x >= box.x1 && position.x <= box.x2 && position.y >= box.y1 && position.y <= box.y2) found = node;
      });
    return found;
  }

  function markTarget(target) {
    cy.nodes(".drop-ok, .drop-bad").removeClass("drop-ok drop-bad");
    if (!state.drag || !target || target.same(state.drag.source)) return;
    target.addClass(connectionFor(state.drag.source, target) ? "drop-ok" : "drop-bad");
  }

  function endDrag() {
    if (!state.drag) return;
    cy.remove(state.drag.ghost);
    cy.nodes(".drop-ok, .drop-bad").removeClass("drop-ok drop-bad");
    state.drag = null;
  }

  cy.on("tapstart", "node", function (evt) {
    if (!state.connecting || evt.target.hasClass("ghost")) return;
    const source = evt.target;
    const ghost = cy.add([
      { group: "nodes", data: { id: "ghost-node" }, classes: "ghost", position: Object.assign({}, evt.position), grabbable: false, selectable: false },
      { group: "edges", data: { id: "ghost-edge", source: source.id(), target: "ghost-node" }, classes: "ghost", selectable: false },
    ]);
    state.drag = { source: source, ghost: ghost };
  });
  cy.on("tapdrag", function (evt) {
    if (!state.drag) return;
    cy.getElementById("ghost-node").position(Object.assign({}, evt.position));
    markTarget(nodeAt(evt.position));
  });
  cy.on("tapend", function (evt) {
    if (!state.drag) return;
    const source = state.drag.source;
    const target = nodeAt(evt.position);
    endDrag();
    if (target && !target.same(source)) connect(source, target);
  });

  // ------------------------------------------------------------------ moving nodes
  const grabbedAt = new Map();
  let moved = [];
  cy.on("grab", "node", function (evt) {
    const node = evt.target;
    grabbedAt.set(node.id(), Object.assign({}, node.position()));
  });
  cy.on("dragfree", "node", function (evt) {
    const node = evt.target;
    const from = grabbedAt.get(node.id());
    grabbedAt.delete(node.id());
    if (!from) return;
    const to = node.position();
    if (Math.abs(from.x - to.x) < 0.5 && Math.abs(from.y - to.y) < 0.5) return;
    moved.push({ id: node.id(), from: from, to: { x: to.x, y: to.y } });
    // A multi-node drag ends with one dragfree per node: save them as one change.
    clearTimeout(moveTimer);
    moveTimer = setTimeout(function () {
      moveTimer = null;
      const batch = moved;
      moved = [];
      savePositions(batch, batch.length === 1 ? "moving " + cy.getElementById(batch[0].id).data("label") : "moving " + batch.length + " nodes");
    }, 0);
  });

  function round(v) {
    return Math.round(v * 10) / 10;
  }

  async function patchPositions(moves, key) {
    const problems = [];
    // A few at a time: an auto-layout of a big design is hundreds of PATCHes.
    for (let i = 0; i < moves.length; i += 8) {
      const results = await Promise.all(
        moves.slice(i, i + 8).map(function (move) {
          const id = current(move.id);
          const p = move[key];
          return api("PATCH", detailUrl(kindOf(id), pkOf(id)), { x: round(p.x), y: round(p.y) });
        })
      );
      results.forEach(function (r) {
        if (!r.ok) problems.push(errorText(r.data));
      });
    }
    return problems.length ? problems[0] + (problems.length > 1 ? " (and " + (problems.length - 1) + " more)" : "") : null;
  }

  function savePositions(moves, label) {
    if (!moves.length) return;
    enqueue(async function () {
      const problem = await patchPositions(moves, "to");
      if (problem) {
        setStatus("Position not saved: " + problem, true);
        await refresh();
        return;
      }
      pushUndo(label, async function () {
        moves.forEach(function (move) {
          const node = cy.getElementById(current(move.id));
          if (node.nonempty()) node.position(move.from);
        });
        return patchPositions(moves, "from");
      });
      setStatus("");
    });
  }

  function autoLayout() {
    enqueue(async function () {
      const nodes = cy.nodes().not(".ghost");
      const before = new Map();
      nodes.forEach(function (node) {
        before.set(node.id(), Object.assign({}, node.position()));
      });
      await runDagre(cy.elements().not(".ghost"));
      fit();
      const moves = [];
      nodes.forEach(function (node) {
        const p = node.position();
        moves.push({ id: node.id(), from: before.get(node.id()), to: { x: p.x, y: p.y } });
      });
      setStatus("Saving " + moves.length + " positions…");
      const problem = await patchPositions(moves, "to");
      if (problem) {
        setStatus("Layout not fully saved: " + problem, true);
        return;
      }
      pushUndo("auto-layout", async function () {
        moves.forEach(function (move) {
          const node = cy.getElementById(current(move.id));
          if (node.nonempty()) node.position(move.from);
        });
        return patchPositions(moves, "from");
      });
      setStatus("Laid out " + moves.length + " nodes, left to right.");
    });
  }

  // ------------------------------------------------------------------ domain filter
  const flowchartLink = document.getElementById("flowchart-link");
  function scopeValue() {
    return state.domain ? "domain:" + state.domain : "all";
  }
  domainSelect.addEventListener("change", function () {
    state.domain = domainSelect.value;
    const url = new URL(window.location.href);
    if (state.domain) url.searchParams.set("domain", state.domain);
    else url.searchParams.delete("domain");
    history.replaceState(null, "", url);
    flowchartLink.href = root.dataset.flowchartUrl + (state.domain ? "?scope=" + encodeURIComponent(scopeValue()) : "");
    enqueue(async function () {
      clearSelection();
      cy.elements().remove();
      if (await refresh()) fit();
    });
  });

  // ------------------------------------------------------------------ flowchart of the current view
  const flowchartPanel = document.getElementById("flowchart-panel");
  let mermaidLoading = null;
  let flowchartTimer = null;
  let svgUrl = null;

  function loadMermaid() {
    if (!mermaidLoading) {
      mermaidLoading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = root.dataset.mermaidSrc;
        script.onload = function () {
          window.mermaid.initialize({
            startOnLoad: false,
            securityLevel: "strict",
            theme: "neutral",
            maxTextSize: 2000000,
            maxEdges: 20000,
            flowchart: { curve: "basis" },
          });
          resolve(window.mermaid);
        };
        script.onerror = function () {
          mermaidLoading = null;
          reject(new Error("mermaid.js did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return mermaidLoading;
  }

  function scheduleFlowchart() {
    clearTimeout(flowchartTimer);
    flowchartTimer = setTimeout(renderFlowchart, 300);
  }

  async function renderFlowchart() {
    const block = flowchartPanel.querySelector("[data-chart-block]");
    const target = block.querySelector("[data-chart]");
    const error = block.querySelector("[data-chart-error]");
    const svgLink = block.querySelector("[data-svg-link]");
    const mmdUrl = root.dataset.flowchartMmdUrl + "?scope=" + encodeURIComponent(scopeValue());
    block.querySelector("[data-mmd-link]").href = mmdUrl;
    error.hidden = true;
    let text;
    try {
      const mermaid = await loadMermaid();
      const response = await fetch(mmdUrl, { credentials: "same-origin" });
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      text = await response.text();
      await mermaid.parse(text);
      const holder = document.createElement("pre");
      holder.className = "mermaid";
      holder.textContent = text;
      target.replaceChildren(holder);
      await mermaid.run({ nodes: [holder] });
      const svg = holder.querySelector("svg");
      if (svg) {
        const source = '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
        if (svgUrl) URL.revokeObjectURL(svgUrl);
        svgUrl = URL.createObjectURL(new Blob([source], { type: "image/svg+xml" }));
        svgLink.href = svgUrl;
        svgLink.download = "eventhub-" + scopeValue().replace(":", "-") + ".svg";
        svgLink.hidden = false;
      }
    } catch (err) {
      error.textContent = "The flowchart could not be drawn: " + (err && err.message ? err.message : String(err));
      error.hidden = false;
    }
  }

  if (flowchartPanel) {
    flowchartPanel.addEventListener("toggle", function () {
      if (flowchartPanel.open) renderFlowchart();
    });
  }

  // ------------------------------------------------------------------ toolbar and keyboard
  document.getElementById("fit").addEventListener("click", fit);
  if (canDesign) {
    connectButton.addEventListener("click", function () {
      setConnectMode(!state.connecting);
    });
    document.getElementById("auto-layout").addEventListener("click", autoLayout);
    undoButton.addEventListener("click", undo);
    document.getElementById("delete-node").addEventListener("click", function () {
      if (state.selected) deleteNode(state.selected);
    });
    document.getElementById("delete-edge").addEventListener("click", function () {
      const edge = cy.getElementById(state.selected || "");
      if (edge.nonempty() && edge.isEdge()) deleteEdge(edge);
    });
  }

  document.addEventListener("keydown", function (evt) {
    const typing = evt.target.closest && evt.target.closest("input, textarea, select, [contenteditable]");
    const modal = document.querySelector("dialog[open]");
    if (typing || modal || !canDesign) {
      if (evt.key === "Escape" && newForm && !newForm.hidden) closeNewForm();
      return;
    }
    const key = evt.key.toLowerCase();
    if ((evt.ctrlKey || evt.metaKey) && key === "z" && !evt.shiftKey) {
      evt.preventDefault();
      undo();
    } else if ((evt.key === "Delete" || evt.key === "Backspace") && state.selected) {
      evt.preventDefault();
      const el = cy.getElementById(state.selected);
      if (el.nonempty() && el.isNode()) deleteNode(el.id());
      else if (el.nonempty()) deleteEdge(el);
    } else if (key === "c" && !evt.ctrlKey && !evt.metaKey && !evt.altKey) {
      setConnectMode(!state.connecting);
    } else if (evt.key === "Escape") {
      if (state.connecting) setConnectMode(false);
      else if (newForm && !newForm.hidden) closeNewForm();
    }
  });

  // ------------------------------------------------------------------ start
  applyGraph(JSON.parse(document.getElementById("graph-data").textContent));
  fit();
  updateUndoButton();
  if (!cy.nodes().length) {
    setStatus(canDesign ? "An empty design: add a service, an event or a topic from the toolbar." : "Nothing designed yet.");
  }
})();
