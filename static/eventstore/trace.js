// The trace page (templates/eventstore/trace.html): the journey as a Plotly timeline, one lane
// per service, arrows from cause to effect labelled with the time between them, dead letters
// and invalid events marked; the designed graph (Cytoscape, the shared look of
// static/eventhub/graph_style.js) with the trace's path highlighted; and, while the trace is
// young (the API says "live"), a refresh from the API every few seconds, stopped when it goes
// quiet or the tab is hidden. The data come from json_script; text goes in with textContent.
(function () {
  "use strict";

  const root = document.getElementById("trace");
  if (!root) return;

  const REFRESH_MS = 5000;
  const MAX_ARROW_LABELS = 300; // beyond this the labels hide each other: arrows only
  const COLOURS = { valid: "#2859c5", none: "#8a94a3", invalid: "#c62828", dead: "#6b1d1d", arrow: "#5b6472" };
  const NO_SOURCE = "(no source)";

  function read(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  let trace = read("trace-data");
  const design = read("trace-design") || { nodes: [], edges: [] };
  const liveState = document.getElementById("trace-live");

  function deadLetterUrl(id) {
    return root.dataset.deadLetterUrl.replace(/0\/$/, id + "/");
  }

  function eventUrl(id) {
    return root.dataset.eventUrl.replace(/\/0\/$/, "/" + id + "/");
  }

  // Plotly reads ISO times without a zone as they are: the axis is in UTC, as the API's times.
  function plotTime(iso) {
    return iso.replace("T", " ").replace(/Z$/, "");
  }

  function midTime(a, b) {
    return plotTime(new Date((Date.parse(a) + Date.parse(b)) / 2).toISOString());
  }

  function lane(event) {
    return event.service || NO_SOURCE;
  }

  // Plotly reads a few HTML tags in its texts (<br>, <a href>...): names from the bus are
  // anyone's, so they reach it as entities, shown as written.
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // ------------------------------------------------------------------ the timeline
  function drawTimeline() {
    const container = document.getElementById("trace-timeline");
    if (!container || typeof Plotly === "undefined") return;
    const lanes = [];
    trace.events.forEach(function (e) {
      if (lanes.indexOf(lane(e)) < 0) lanes.push(lane(e));
    });
    const byId = {};
    trace.events.forEach(function (e) {
      if (e.id && !(e.id in byId)) byId[e.id] = e;
    });
    // A dead letter sits on the lane of the service that failed it, when that lane exists.
    const deadLane = function (dl) {
      if (dl.service && lanes.indexOf(dl.service) >= 0) return dl.service;
      if (lanes.indexOf("dead letters") < 0) lanes.push("dead letters");
      return "dead letters";
    };
    const deadRows = trace.dead_letters.map(function (dl) {
      const event = byId[dl.event_id];
      return { dl: dl, lane: deadLane(dl), time: dl.failed_at || (event ? event.time : trace.last_time) };
    });
    const y = function (name) {
      return lanes.indexOf(name);
    };

    const groups = {
      valid: { name: "valid", colour: COLOURS.valid, symbol: "circle", events: [] },
      none: { name: "no schema", colour: COLOURS.none, symbol: "circle-open", events: [] },
      invalid: { name: "invalid", colour: COLOURS.invalid, symbol: "circle", events: [] },
      replay: { name: "replay", colour: COLOURS.valid, symbol: "diamond", events: [] },
    };
    trace.events.forEach(function (e) {
      if (e.replay_count > 0) groups.replay.events.push(e);
      else if (e.valid === false) groups.invalid.events.push(e);
      else if (e.valid === null) groups.none.events.push(e);
      else groups.valid.events.push(e);
    });
    const data = Object.keys(groups).map(function (key) {
      const g = groups[key];
      return {
        type: "scatter",
        mode: "markers+text",
        name: g.name,
        x: g.events.map(function (e) { return plotTime(e.time); }),
        y: g.events.map(function (e) { return y(lane(e)); }),
        text: g.events.map(function (e) {
          if (e.valid === false) return plain(e.invalid_path || "invalid");
          return e.replay_count > 0 ? "replay " + e.replay_count : "";
        }),
        textposition: "top center",
        textfont: { size: 10, color: g.colour },
        hovertext: g.events.map(function (e) {
          return [e.type, e.id, e.bus + ":" + e.topic + "/" + e.partition + "@" + e.offset,
            e.latency_ms === null ? "" : "+" + e.latency_ms + " ms after its cause",
            e.valid === false ? "invalid at " + e.invalid_path + " (" + e.invalid_rule + ")" : ""]
            .filter(Boolean).map(plain).join("<br>");
        }),
        hoverinfo: "text",
        marker: { size: 12, color: g.colour, symbol: g.symbol, line: { width: 1, color: "#ffffff" } },
      };
    });
    data.push({
      type: "scatter",
      mode: "markers+text",
      name: "dead letter",
      x: deadRows.map(function (r) { return plotTime(r.time); }),
      y: deadRows.map(function (r) { return y(r.lane); }),
      text: deadRows.map(function (r) { return plain("#" + r.dl.id + " " + r.dl.status); }),
      textposition: "bottom center",
      textfont: { size: 10, color: COLOURS.dead },
      hovertext: deadRows.map(function (r) {
        return ["dead letter #" + r.dl.id + " (" + r.dl.status + ")", r.dl.error_class || "", r.dl.group || ""].map(plain).join("<br>");
      }),
      hoverinfo: "text",
      customdata: deadRows.map(function (r) { return r.dl.id; }),
      marker: { size: 14, color: COLOURS.dead, symbol: "x" },
    });

    const annotations = [];
    let labels = 0;
    // From each dead-lettered event to its dead letter: what became of it.
    deadRows.forEach(function (r) {
      const event = byId[r.dl.event_id];
      if (!event) return;
      annotations.push({
        x: plotTime(r.time), y: y(r.lane), ax: plotTime(event.time), ay: y(lane(event)),
        xref: "x", yref: "y", axref: "x", ayref: "y", text: "",
        showarrow: true, arrowhead: 2, arrowwidth: 1.3, arrowcolor: COLOURS.dead, opacity: 0.6, standoff: 8, startstandoff: 7,
      });
    });
    trace.events.forEach(function (e) {
      const cause = e.causation_id ? byId[e.causation_id] : null;
      if (!cause || cause === e) return;
      annotations.push({
        x: plotTime(e.time), y: y(lane(e)), ax: plotTime(cause.time), ay: y(lane(cause)),
        xref: "x", yref: "y", axref: "x", ayref: "y",
        showarrow: true, arrowhead: 2, arrowsize: 1, arrowwidth: 1.3, arrowcolor: COLOURS.arrow, standoff: 7, startstandoff: 7,
        text: "",
      });
      if (e.latency_ms !== null && labels < MAX_ARROW_LABELS) {
        labels += 1;
        annotations.push({
          x: midTime(cause.time, e.time), y: (y(lane(e)) + y(lane(cause))) / 2, xref: "x", yref: "y",
          showarrow: false, text: "+" + e.latency_ms + " ms", font: { size: 10, color: "#1c2430" },
          bgcolor: "rgba(255,255,255,0.85)",
        });
      }
    });

    const layout = {
      height: 140 + 56 * Math.max(lanes.length, 1),
      margin: { l: 130, r: 20, t: 10, b: 40 },
      xaxis: { type: "date", title: { text: "broker time (UTC)" } },
      yaxis: {
        tickvals: lanes.map(function (_, i) { return i; }),
        ticktext: lanes.map(plain),
        range: [lanes.length - 0.5, -0.5], // the first service on top
        zeroline: false,
      },
      annotations: annotations,
      showlegend: true,
      legend: { orientation: "h", y: -0.25 },
      hovermode: "closest",
    };
    Plotly.react(container, data, layout, { displaylogo: false, responsive: true });
    if (!container.dataset.bound) {
      container.dataset.bound = "1";
      container.on("plotly_click", function (event) {
        const point = event.points && event.points[0];
        if (point && point.data.name === "dead letter") window.location.href = deadLetterUrl(point.customdata);
      });
    }
  }

  // ------------------------------------------------------------------ the design
  let cy = null;

  // The rules of the path, as the trace says them: the services (by slug), event types (by
  // name) and topics (by bus and address) it went through; "produces" edges from a service
  // to a type it published, "consumes" edges from a type to a service that reacted to it.
  function path() {
    const byId = {};
    trace.events.forEach(function (e) {
      if (e.id && !(e.id in byId)) byId[e.id] = e;
    });
    const services = {}, types = {}, topics = {};
    design.nodes.forEach(function (n) {
      if (n.kind === "service" && n.slug) services[n.slug] = n.id;
      if (n.kind === "event") types[n.label] = n.id;
      if (n.kind === "topic") topics[n.bus + "\u0000" + n.address] = n.id;
    });
    const nodes = new Set(), produced = new Set(), consumed = new Set();
    trace.events.forEach(function (e) {
      const service = services[e.service], type = types[e.type], topic = topics[e.bus + "\u0000" + e.topic];
      [service, type, topic].forEach(function (id) { if (id) nodes.add(id); });
      if (service && type) produced.add(service + ">" + type);
      const cause = e.causation_id ? byId[e.causation_id] : null;
      if (service && cause && types[cause.type]) consumed.add(types[cause.type] + ">" + service);
    });
    const edges = new Set();
    design.edges.forEach(function (edge) {
      const pair = edge.source + ">" + edge.target;
      if ((edge.kind === "produces" && produced.has(pair)) || (edge.kind === "consumes" && consumed.has(pair)) ||
          (edge.kind === "on-topic" && nodes.has(edge.source) && nodes.has(edge.target))) edges.add(edge.id);
    });
    return { nodes: nodes, edges: edges };
  }

  function placed(n) {
    return n.x !== null && n.x !== undefined && n.y !== null && n.y !== undefined;
  }

  function drawDesign() {
    const container = document.getElementById("trace-graph");
    const on = path();
    const labels = design.nodes.filter(function (n) { return on.nodes.has(n.id); }).map(function (n) { return n.label; });
    const caption = document.getElementById("trace-path-nodes");
    if (caption) caption.textContent = labels.length ? labels.join(", ") : "no designed service, event or topic";
    if (!container || typeof cytoscape === "undefined") return;
    if (cy === null) {
      const ids = new Set(design.nodes.map(function (n) { return n.id; }));
      const elements = design.nodes.map(function (n) {
        const classes = [n.kind];
        if (n.kind === "topic" && n.bus === "redis") classes.push("redis");
        if (n.kind === "event" && n.event_kind === "command") classes.push("command");
        return { group: "nodes", data: { id: n.id, display: n.label }, classes: classes.join(" "), position: placed(n) ? { x: n.x, y: n.y } : { x: 0, y: 0 } };
      }).concat(design.edges.filter(function (e) { return ids.has(e.source) && ids.has(e.target); }).map(function (e) {
        return { group: "edges", data: { id: e.id, source: e.source, target: e.target }, classes: e.kind };
      }));
      cy = cytoscape({
        container: container,
        elements: elements,
        layout: design.nodes.every(placed) ? { name: "preset" } : { name: "breadthfirst", directed: true },
        autoungrabify: true,
        boxSelectionEnabled: false,
        wheelSensitivity: 0.3,
        style: EventHubGraphStyle.stylesheet({
          node: { "text-max-width": "130px", "font-size": 11, width: 144 },
          rules: [
            { selector: ".off-path", style: { opacity: 0.25 } },
            { selector: "node.on-path", style: { "border-width": 4, "border-color": "#d97706" } },
            { selector: "edge.on-path", style: { width: 4, "line-color": "#d97706", "target-arrow-color": "#d97706", opacity: 1 } },
          ],
        }),
      });
    }
    cy.batch(function () {
      cy.elements().removeClass("on-path off-path");
      cy.nodes().forEach(function (n) { n.addClass(on.nodes.has(n.id()) ? "on-path" : "off-path"); });
      cy.edges().forEach(function (e) { e.addClass(on.edges.has(e.id()) ? "on-path" : "off-path"); });
    });
    const focus = cy.elements(".on-path");
    cy.fit(focus.length ? focus : undefined, 30);
  }

  // ------------------------------------------------------------------ the tables
  function cell(row, text, tag) {
    const td = document.createElement("td");
    if (tag) {
      const inner = document.createElement(tag);
      inner.textContent = text;
      td.appendChild(inner);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function link(td, href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    td.appendChild(a);
  }

  function drawTables() {
    const events = document.querySelector("#trace-events tbody");
    events.replaceChildren();
    trace.events.forEach(function (e) {
      const row = document.createElement("tr");
      row.dataset.id = e.id;
      cell(row, e.time, "time");
      cell(row, e.service || NO_SOURCE);
      cell(row, e.type);
      cell(row, e.bus + ":" + e.topic + "/" + e.partition + "@" + e.offset);
      cell(row, e.latency_ms === null ? "—" : "+" + e.latency_ms + " ms");
      cell(row, e.replay_count ? "replay " + e.replay_count : "");
      const schema = cell(row, e.valid === null ? "no schema" : e.valid ? "v" + e.schema_version + " valid" : "");
      if (e.valid === false) {
        const span = document.createElement("span");
        span.className = "error";
        span.textContent = "invalid at " + e.invalid_path + " (" + e.invalid_rule + ")";
        schema.appendChild(span);
      }
      cell(row, e.id, "code");
      const payload = cell(row, "");
      link(payload, eventUrl(e.payload_id), "event");
      events.appendChild(row);
    });
    const dead = document.querySelector("#trace-dead-letters tbody");
    dead.replaceChildren();
    trace.dead_letters.forEach(function (dl) {
      const row = document.createElement("tr");
      link(cell(row, ""), deadLetterUrl(dl.id), "#" + dl.id);
      cell(row, dl.event_id, "code");
      cell(row, dl.status);
      cell(row, dl.error_class, "code");
      cell(row, dl.group + (dl.service ? " · " + dl.service : ""));
      cell(row, String(dl.replay_count));
      dead.appendChild(row);
    });
    if (!trace.dead_letters.length) {
      const row = document.createElement("tr");
      cell(row, "None: no event of this trace was dead-lettered.").colSpan = 6;
      dead.appendChild(row);
    }
    document.getElementById("trace-count").textContent = String(trace.events.length);
    document.getElementById("trace-dead-count").textContent = String(trace.dead_letters.length);
    document.getElementById("trace-truncated").hidden = !trace.truncated;
  }

  // ------------------------------------------------------------------ live refresh
  function setState(state, text) {
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  function refresh() {
    if (document.hidden) {
      // No request from a tab nobody looks at; the next visible moment picks up.
      document.addEventListener("visibilitychange", refresh, { once: true });
      return;
    }
    fetch(root.dataset.apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (fresh) {
        const grew = fresh.events.length !== trace.events.length || fresh.dead_letters.length !== trace.dead_letters.length ||
          JSON.stringify(fresh.dead_letters) !== JSON.stringify(trace.dead_letters);
        trace = fresh;
        if (grew) draw();
        schedule();
      })
      .catch(function (error) {
        setState("stopped", "refresh stopped (" + error.message + "): reload the page");
      });
  }

  function schedule() {
    if (trace.live) {
      setState("live", "live: refreshing");
      window.setTimeout(refresh, REFRESH_MS);
    } else {
      setState("idle", "finished");
    }
  }

  function draw() {
    drawTables();
    drawTimeline();
    drawDesign();
  }

  draw();
  schedule();
})();
