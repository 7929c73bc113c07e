// Edit and retry: the two editors (the form made from the schema, raw JSON) are both on
// the page; the tabs switch between them without a round trip, so what was typed in one
// is still there when coming back. Each editor is its own form and sends only itself.
(function () {
  "use strict";

  const root = document.getElementById("dead-letter-edit");
  if (!root) return;

  function select(mode) {
    for (const panel of root.querySelectorAll("[data-mode-panel]")) panel.hidden = panel.dataset.modePanel !== mode;
    for (const tab of root.querySelectorAll(".edit-modes a[data-mode]")) {
      if (tab.dataset.mode === mode) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    const url = new URL(window.location.href);
    url.searchParams.set("mode", mode);
    window.history.replaceState(null, "", url);
  }

  root.addEventListener("click", function (event) {
    const tab = event.target.closest(".edit-modes a[data-mode]");
    if (!tab) return;
    event.preventDefault();
    select(tab.dataset.mode);
  });
})();
