// The flowchart page: render the server's Mermaid text with the vendored
// mermaid.js, offer the rendered SVG as a download, switch scope on change.
//
// Security: labels were escaped on the server (designer/mermaid.py) and mermaid
// runs with securityLevel "strict" (labels sanitised, no click handlers). The
// text only ever enters the page through textContent.
(function () {
  "use strict";

  const page = document.getElementById("flowchart-page");
  if (!page) return;
  const text = JSON.parse(document.getElementById("flowchart-text").textContent);
  const block = page.querySelector("[data-chart-block]");

  mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",
    theme: "neutral",
    // A large design is a long text; the defaults (50 000 chars, 500 edges) are for hand-written charts.
    maxTextSize: 2000000,
    maxEdges: 20000,
    flowchart: { curve: "basis" },
  });

  renderChart(block, text, page.dataset.svgFilename || "eventhub.svg");

  // Changing the scope reloads the page with ?scope=...; the button stays for no-JS use.
  const scope = document.getElementById("scope");
  scope.addEventListener("change", function () {
    scope.form.requestSubmit();
  });

  let svgUrl = null;

  async function renderChart(block, text, filename) {
    const target = block.querySelector("[data-chart]");
    const error = block.querySelector("[data-chart-error]");
    const svgLink = block.querySelector("[data-svg-link]");
    error.hidden = true;
    svgLink.hidden = true;
    try {
      await mermaid.parse(text);
    } catch (err) {
      error.textContent = "The chart could not be drawn: " + (err && err.message ? err.message : String(err));
      error.hidden = false;
      return;
    }
    const holder = document.createElement("pre");
    holder.className = "mermaid";
    holder.textContent = text;
    target.replaceChildren(holder);
    await mermaid.run({ nodes: [holder] });
    const svg = holder.querySelector("svg");
    if (!svg) return;
    // The download is the SVG as drawn here: the server has no browser to draw it.
    const source = '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
    if (svgUrl) URL.revokeObjectURL(svgUrl);
    svgUrl = URL.createObjectURL(new Blob([source], { type: "image/svg+xml" }));
    svgLink.href = svgUrl;
    svgLink.download = filename;
    svgLink.textContent = "Download .svg";
    svgLink.hidden = false;
    target.dataset.rendered = "true";
  }
})();
