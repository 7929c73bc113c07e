// The three Plotly charts (throughput, lag, dead letters), drawn once per animation
// frame at most and not at all while the tab is hidden; and the lag unit switch.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { root, state, WINDOW_MS } = dash; // state.js
  const { $, isNum, fmtValue, setText } = dash; // helpers.js
  const { topicInScope } = dash; // scope.js
  const { series, identity, pick, MAX_TRACES } = dash; // series.js

  const LEGEND_CHARS = 34; // per chart: the busiest series; a legend of 200 topics helps nobody

  const PLOT_CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtons: [["toImage"]],
    toImageButtonOptions: { format: "png", scale: 2 },
  };
  let chartsDirty = false;
  let chartFrame = 0;

  function chartLayout(yTitle, endMs, extra) {
    return Object.assign(
      {
        margin: { l: 56, r: 12, t: 8, b: 24 },
        height: 300,
        xaxis: {
          type: "date",
          range: [new Date(endMs - WINDOW_MS), new Date(endMs)],
          tickformat: "%H:%M",
          hoverformat: "%H:%M:%S",
          fixedrange: true,
          showgrid: false,
        },
        yaxis: { title: { text: yTitle, font: { size: 11 } }, rangemode: "tozero", fixedrange: true, automargin: true, zeroline: true },
        showlegend: true,
        // Below the plot, scrolling past a few rows, so a long legend never squeezes the lines.
        legend: { orientation: "h", x: 0, y: -0.12, yanchor: "top", font: { size: 11 }, maxheight: 64 },
        hovermode: "x unified",
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#1c2430" },
        uirevision: "monitor", // legend toggles survive every redraw
        datarevision: state.lastRecorded,
      },
      extra || {}
    );
  }

  function lineTrace(s, field, hover, scale) {
    const id = identity(s.key);
    return {
      uid: id.uid,
      name: plotlyText(shorten(s.label, LEGEND_CHARS)),
      meta: plotlyText(s.label), // the full name, for the hover label (and the browser tests)
      type: "scatter",
      mode: s.t.length < 3 ? "lines+markers" : "lines", // a lone point needs a dot to be seen
      marker: { size: 5 },
      x: s.t.map(function (t) {
        return new Date(t);
      }),
      y: scale
        ? s[field].map(function (v) {
            return v === null ? null : v * scale;
          })
        : s[field].slice(),
      line: { color: id.colour, width: 1.8 },
      connectgaps: false,
      hovertemplate: hover + "<extra>%{meta}</extra>",
    };
  }

  // Plotly reads a few HTML-like tags in names (<b>, <a href>); entities keep names literal.
  function plotlyText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // Long group → topic names would eat the legend: keep both ends, drop the middle.
  function shorten(text, max) {
    return text.length <= max ? text : text.slice(0, Math.ceil(max / 2) - 1) + "…" + text.slice(text.length - Math.floor(max / 2));
  }

  function note(id, text) {
    const p = $(id);
    p.hidden = !text;
    setText(p, text || "");
  }

  function drawCharts() {
    chartFrame = 0;
    if (document.hidden) {
      chartsDirty = true;
      return;
    }
    chartsDirty = false;
    if (typeof Plotly === "undefined") return;
    if (!state.lastRecorded) {
      ["chart-throughput-note", "chart-lag-note", "chart-dlq-note"].forEach(function (id) {
        note(id, "Waiting for the first snapshot.");
      });
      return;
    }
    const end = state.lastRecorded;

    const throughput = pick("topics", "rate", function (s) {
      return !s.dead && topicInScope(s.bus, s.topic);
    });
    Plotly.react(
      "chart-throughput",
      throughput.shown.map(function (s) {
        return lineTrace(s, "rate", "%{y:.2f} msg/s");
      }),
      chartLayout("messages/s", end),
      PLOT_CONFIG
    );
    note(
      "chart-throughput-note",
      throughput.shown.length === 0
        ? "No topic had traffic in the last 10 minutes."
        : throughput.left > 0
          ? "The " + MAX_TRACES + " busiest topics; " + throughput.left + " quieter ones are left out."
          : ""
    );

    const field = state.lagUnit === "seconds" ? "lagS" : "lag";
    const lag = pick("groups", field, function (s) {
      return topicInScope(s.bus, s.topic);
    });
    Plotly.react(
      "chart-lag",
      lag.shown.map(function (s) {
        return lineTrace(s, field, field === "lagS" ? "%{y:.1f} s" : "%{y:,} messages");
      }),
      chartLayout(field === "lagS" ? "seconds behind" : "messages behind", end),
      PLOT_CONFIG
    );
    note(
      "chart-lag-note",
      lag.shown.length === 0
        ? "No consumer group was behind in the last 10 minutes."
        : lag.left > 0
          ? "The " + MAX_TRACES + " groups furthest behind; " + lag.left + " more are left out."
          : ""
    );

    const dlq = pick("topics", "rate", function (s) {
      return s.dead && topicInScope(s.bus, s.topic);
    });
    // Stacked: the top of the stack is the total inflow.
    const dlqTraces = dlq.shown.map(function (s) {
      const trace = lineTrace(s, "rate", "%{y:.1f}/min", 60);
      trace.stackgroup = "dead-letters";
      trace.line.width = 1;
      return trace;
    });
    Plotly.react("chart-dlq", dlqTraces, chartLayout("dead letters/min", end), PLOT_CONFIG);
    const anyDead = Array.from(series.topics.values()).some(function (s) {
      return s.dead;
    });
    note(
      "chart-dlq-note",
      !anyDead
        ? "No dead-letter topic on the buses yet."
        : dlq.shown.length === 0
          ? "No dead letters in the last 10 minutes."
          : ""
    );
  }

  function scheduleCharts() {
    if (!chartFrame) chartFrame = requestAnimationFrame(drawCharts);
  }

  function renderDlqTotal() {
    const dead = state.snapshot.dead_letters || {};
    setText($("dlq-total"), isNum(dead.inflow_per_min) ? fmtValue(dead.inflow_per_min) + "/min now" : "");
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && chartsDirty) scheduleCharts();
  });

  Array.prototype.forEach.call(root.querySelectorAll("[data-lag-unit]"), function (button) {
    button.addEventListener("click", function () {
      state.lagUnit = button.dataset.lagUnit;
      root.querySelectorAll("[data-lag-unit]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      setText($("chart-lag-unit"), state.lagUnit);
      scheduleCharts();
    });
  });

  Object.assign(dash, { scheduleCharts, renderDlqTotal });
})(window.EventHubDashboard);
