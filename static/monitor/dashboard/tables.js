// Tables redrawn every tick without flicker: rows are reconciled by key, so a hovered
// status keeps its tooltip and a screen reader hears only what changed.
(function (dash) {
  "use strict";
  if (!dash) return;

  const { $, setText, setTitle } = dash; // helpers.js

  // A cell spec: {text, cls, title, badge: "class-suffix"} — a badge cell holds a
  // <span class="status status-…"> with the text; {button: "label"} holds an action button;
  // {text, href} a link.
  function fillCell(td, spec) {
    const cls = spec.cls || "";
    if (td.className !== cls) td.className = cls;
    if (spec.button !== undefined) {
      // An action on the row (observed.js): one <button data-action="adopt">, kept across ticks.
      let button = td.firstElementChild;
      if (!spec.button) {
        if (button) td.textContent = "";
        setTitle(td, spec.title);
        return;
      }
      if (!button) {
        td.textContent = "";
        button = td.appendChild(document.createElement("button"));
        button.type = "button";
        button.className = "small";
        button.dataset.action = "adopt";
      }
      setText(button, spec.button);
      return;
    }
    if (spec.badge) {
      let span = td.firstElementChild;
      if (!span) {
        td.textContent = "";
        span = td.appendChild(document.createElement("span"));
      }
      const badgeCls = "status status-" + spec.badge;
      if (span.className !== badgeCls) span.className = badgeCls;
      setText(span, spec.text);
      setTitle(span, spec.title);
      let hidden = span.nextElementSibling;
      if (spec.title) {
        // The reason for keyboard and screen-reader users too, not only on hover.
        if (!hidden) {
          hidden = td.appendChild(document.createElement("span"));
          hidden.className = "visually-hidden";
        }
        setText(hidden, " (" + spec.title + ")");
      } else if (hidden) {
        hidden.remove();
      }
      return;
    }
    if (spec.href) {
      // A name that opens its page (a topic in the topic browser).
      let link = td.firstElementChild;
      if (!link || link.tagName !== "A") {
        td.textContent = "";
        link = td.appendChild(document.createElement("a"));
      }
      if (link.getAttribute("href") !== spec.href) link.setAttribute("href", spec.href);
      setText(link, spec.text);
      setTitle(link, spec.title);
      return;
    }
    setTitle(td, spec.title);
    const text = spec.text === null || spec.text === undefined ? "" : String(spec.text);
    const tag = spec.tag || "";
    if (!tag && !td.firstElementChild) {
      setText(td, text);
      return;
    }
    // A cell with a small tag after its text ("not designed"): rebuilt only when either changes.
    if (td.dataset.text === text && td.dataset.tag === tag) return;
    td.dataset.text = text;
    td.dataset.tag = tag;
    td.textContent = text;
    if (tag) {
      const span = td.appendChild(document.createElement("span"));
      span.className = "tag";
      span.textContent = tag;
    }
  }

  // Keyed reconcile: rows are reused by key, updated in place and moved only when
  // the order changes; a last row says how many were left out.
  function renderRows(tableId, items, keyOf, cellsOf, limit, rowClass) {
    const table = $(tableId);
    if (!table) return;
    const tbody = table.tBodies[0];
    const byKey = new Map();
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      byKey.set(tr.dataset.key, tr);
    });
    const shown = items.slice(0, limit);
    const wanted = [];
    shown.forEach(function (item) {
      const key = keyOf(item);
      const cells = cellsOf(item);
      let tr = byKey.get(key);
      if (!tr || tr.cells.length !== cells.length) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        cells.forEach(function () {
          tr.appendChild(document.createElement("td"));
        });
      }
      byKey.delete(key);
      cells.forEach(function (spec, i) {
        fillCell(tr.cells[i], spec);
      });
      const cls = rowClass ? rowClass(item) : "";
      if (tr.className !== cls) tr.className = cls;
      wanted.push(tr);
    });
    if (items.length > shown.length) {
      let more = byKey.get("__more__");
      if (!more) {
        more = document.createElement("tr");
        more.dataset.key = "__more__";
        const td = more.appendChild(document.createElement("td"));
        td.className = "more";
      }
      byKey.delete("__more__");
      more.cells[0].colSpan = table.tHead.rows[0].cells.length;
      setText(more.cells[0], "… and " + (items.length - shown.length) + " more");
      wanted.push(more);
    }
    byKey.forEach(function (tr) {
      tr.remove();
    });
    wanted.forEach(function (tr, i) {
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    table.hidden = items.length === 0;
    const none = table.parentElement.querySelector(":scope > .none") || table.parentElement.parentElement.querySelector(":scope > .none");
    if (none) none.hidden = items.length > 0;
  }

  Object.assign(dash, { renderRows });
})(window.EventHubDashboard);
