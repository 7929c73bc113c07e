// The flow-check page: run a check, show its steps' verdicts while it runs (polling the
// API once a second until it is decided), and the history of checks with a latency chart.
(function () {
  "use strict";
  var root = document.getElementById("flow-checks");
  if (!root) return;
  var POLL_MS = 1000;
  var history = JSON.parse(document.getElementById("flow-check-history").textContent);
  var polling = null;

  function checkUrl(id) {
    return root.dataset.checkUrl.replace(/0$/, String(id));
  }

  function setStatus(el, status, text) {
    el.className = "status status-" + (status || "none");
    el.dataset.status = status || "";
    el.textContent = text || status || "—";
  }

  function latency(ms) {
    if (ms === null || ms === undefined) return "—";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }

  // The current check: its status, what broke, and each step's row.
  function showCheck(check) {
    setStatus(document.getElementById("check-status"), check.status);
    document.getElementById("current-check-label").textContent =
      "check #" + check.id + (check.scheduled ? " (scheduled)" : "");
    var error = document.getElementById("check-error");
    error.textContent = check.error || "";
    error.hidden = !check.error;
    var seen = {};
    check.steps.forEach(function (step) {
      if (step.step === null) return;
      seen[step.step] = step;
    });
    root.querySelectorAll("#flow-steps tr[data-step]").forEach(function (row) {
      var step = seen[row.dataset.step];
      setStatus(row.querySelector("[data-role=status]"), step ? step.status : "", step ? step.status : "—");
      row.querySelector("[data-role=latency]").textContent = step ? latency(step.latency_ms) : "—";
      row.classList.toggle("broken", !!step && (step.status === "failed" || step.status === "late"));
    });
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function showHistory() {
    var body = document.querySelector("#check-history tbody");
    body.replaceChildren();
    history.forEach(function (check) {
      var row = document.createElement("tr");
      row.dataset.check = check.id;
      row.appendChild(cell("#" + check.id));
      row.appendChild(cell(new Date(check.started_at).toLocaleString()));
      row.appendChild(cell(check.scheduled ? "schedule" : check.started_by || "—"));
      var statusCell = document.createElement("td");
      var badge = document.createElement("span");
      setStatus(badge, check.status);
      statusCell.appendChild(badge);
      row.appendChild(statusCell);
      row.appendChild(cell(check.error || ""));
      body.appendChild(row);
    });
    document.getElementById("history-empty").hidden = history.length > 0;
    drawChart();
  }

  // One line per step: its latency in each check, oldest check first.
  function drawChart() {
    if (typeof Plotly === "undefined" || !history.length) return;
    var lines = {};
    var order = [];
    history.slice().reverse().forEach(function (check) {
      check.steps.forEach(function (step) {
        var name = step.position + 1 + ". " + step.event_type;
        if (!lines[name]) {
          lines[name] = { x: [], y: [], text: [], name: name, type: "scatter", mode: "lines+markers" };
          order.push(name);
        }
        lines[name].x.push(check.started_at);
        lines[name].y.push(step.latency_ms);
        lines[name].text.push("check #" + check.id + ": " + step.status);
      });
    });
    var layout = {
      margin: { t: 10, r: 10, b: 40, l: 60 },
      yaxis: { title: { text: "latency (ms)" }, rangemode: "tozero" },
      legend: { orientation: "h" },
    };
    Plotly.react("latency-chart", order.map(function (n) { return lines[n]; }), layout, { displaylogo: false, responsive: true });
  }

  function refreshHistory() {
    return fetch(root.dataset.historyUrl + "?limit=50", { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (page) {
        if (!page) return;
        history = page.results;
        showHistory();
      });
  }

  function poll(id) {
    clearTimeout(polling);
    fetch(checkUrl(id), { headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (check) {
        if (!check) return;
        showCheck(check);
        if (check.status === "running") {
          polling = setTimeout(function () { poll(id); }, POLL_MS);
        } else {
          refreshHistory();
        }
      })
      .catch(function () { polling = setTimeout(function () { poll(id); }, POLL_MS * 3); });
  }

  var button = document.getElementById("run-check");
  if (button) {
    button.addEventListener("click", function () {
      var error = document.getElementById("run-error");
      error.hidden = true;
      button.disabled = true;
      fetch(root.dataset.startUrl, {
        method: "POST",
        headers: {
          Accept: "application/json",
          "X-CSRFToken": root.querySelector("input[name=csrfmiddlewaretoken]").value,
        },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (answer) {
          if (!answer.ok) {
            error.textContent = answer.body.detail || "The check could not be started.";
            error.hidden = false;
            return;
          }
          showCheck({ id: answer.body.id, status: "running", steps: [], error: "" });
          poll(answer.body.id);
        })
        .catch(function () {
          error.textContent = "The check could not be started: no answer from the server.";
          error.hidden = false;
        })
        .finally(function () { button.disabled = false; });
    });
  }

  showHistory();
  if (history.length) {
    showCheck(history[0]);
    if (history[0].status === "running") poll(history[0].id);
  }
})();
