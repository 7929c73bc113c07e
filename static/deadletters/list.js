// The dead-letter list, kept current over /ws/dead-letters/ without reloading.
//
// - `deadletters.new` {ids}: on the first page of the list, the rows of those ids that
//   match the current filters are fetched (/dead-letters/rows?ids=…&<filters>) and put
//   on top; elsewhere (older pages, the grouped view) a "N new — show" bar appears.
// - `deadletters.changed` {ids, status}: the status badge of each row shown changes at
//   once (the status is one of a known few), then the rows are fetched again for the rest
//   (replay count…). A ticked checkbox stays ticked.
// - `redrive.progress`: a job changes many rows without naming them, so every row shown
//   is fetched again, at most once a second.
// - The status counts are fetched again (?part=counts) after any of these.
// - When the socket opens (and opens again), the first page is asked again for what came
//   while no frame could (`catchUp`).
// The filter form, status tabs and pager swap #dl-results through htmx; this script only
// delegates events to it, so it keeps working after a swap.
(function () {
  "use strict";

  const root = document.getElementById("dead-letters");
  if (!root || !window.EventHubDeadLetters) return;
  const live = window.EventHubDeadLetters;
  const STATUSES = ["new", "retrying", "retried", "resolved", "discarded", "parked"];
  const ROWS_PER_REQUEST = 200;

  const urls = { rows: root.dataset.rowsUrl, list: root.dataset.listUrl, login: root.dataset.loginUrl };
  const bar = document.getElementById("dl-new-bar");
  const barButton = document.getElementById("dl-new-show");
  let unseen = 0;
  let changedIds = new Set();

  function meta() {
    const element = document.getElementById("dl-results-meta");
    return {
      page: element ? Number(element.dataset.page) : 0,
      grouped: element ? element.dataset.grouped === "1" : true,
    };
  }

  function currentQuery() {
    const params = new URLSearchParams(window.location.search);
    params.delete("page");
    params.delete("part");
    return params;
  }

  function tbody() {
    return document.getElementById("dl-rows");
  }

  function shownIds() {
    const body = tbody();
    return body ? Array.from(body.querySelectorAll("tr[data-id]"), (row) => Number(row.dataset.id)) : [];
  }

  async function fetchRows(ids, withFilters) {
    const params = withFilters ? currentQuery() : new URLSearchParams();
    params.set("ids", ids.slice(0, ROWS_PER_REQUEST).join(","));
    return live.fetchFragment(urls.rows + "?" + params.toString(), urls.login);
  }

  function handleError(error) {
    if (error instanceof live.SignedOut) socket.signedOut();
  }

  // ------------------------------------------------------------------ new rows
  function showBar(count) {
    unseen += count;
    barButton.textContent = unseen + " new dead letter" + (unseen === 1 ? "" : "s") + " — show";
    bar.hidden = false;
  }

  async function onNew(frame) {
    const ids = (frame.ids || []).filter(Number.isInteger);
    if (!ids.length) return;
    const where = meta();
    if (where.grouped || where.page !== 1) {
      showBar(frame.count || ids.length);
      refreshCounts();
      return;
    }
    try {
      const fragment = await fetchRows(ids, true);
      const body = tbody();
      if (!body) return;
      // The fragment is newest first: insert from its end so the newest ends on top.
      const rows = Array.from(fragment.querySelectorAll("tr[data-id]")).reverse();
      for (const row of rows) {
        if (document.getElementById(row.id)) continue;
        row.classList.add("fresh");
        body.insertBefore(row, body.firstChild);
      }
      if (rows.length) revealTable();
      refreshCounts();
    } catch (error) {
      handleError(error);
    }
  }

  function revealTable() {
    for (const id of ["dl-table", "dl-bulk"]) {
      const element = document.getElementById(id);
      if (element) element.hidden = false;
    }
    const empty = document.getElementById("dl-empty");
    if (empty) empty.hidden = true;
  }

  // Dead letters stored between the page's render and the socket's opening (or while it was
  // down) came with no frame: the counts said one more than the table showed. The first page
  // is asked again, and what is newer than the rows shown goes on top as a frame's rows would.
  async function catchUp() {
    const where = meta();
    if (where.grouped || where.page !== 1) return;
    try {
      const params = currentQuery();
      const fragment = await live.fetchFragment(urls.list + "?" + params.toString(), urls.login);
      const shown = new Set(shownIds());
      const newest = Math.max(0, ...shown);
      const ids = Array.from(fragment.querySelectorAll("tr[data-id]"), (row) => Number(row.dataset.id)).filter(
        (id) => id > newest && !shown.has(id),
      );
      if (ids.length) onNew({ ids: ids, count: ids.length });
    } catch (error) {
      handleError(error);
    }
  }

  barButton.addEventListener("click", function () {
    unseen = 0;
    bar.hidden = true;
    const params = currentQuery();
    const url = urls.list + (params.toString() ? "?" + params.toString() : "");
    window.htmx.ajax("GET", url, { target: "#dl-results", swap: "innerHTML" }).then(function () {
      window.history.replaceState(null, "", url);
    });
  });

  // ------------------------------------------------------------------ changed rows
  function setStatus(row, status) {
    if (!STATUSES.includes(status)) return;
    row.dataset.status = status;
    const badge = row.querySelector("[data-role=status]");
    if (badge) {
      badge.className = "status status-" + status;
      badge.textContent = status;
    }
  }

  function onChanged(frame) {
    for (const id of frame.ids || []) {
      const row = document.getElementById("dl-row-" + Number(id));
      if (!row) continue;
      setStatus(row, frame.status);
      changedIds.add(Number(id));
    }
    if (changedIds.size) refreshChanged();
    refreshCounts();
  }

  async function replaceRows(ids) {
    if (!ids.length) return;
    try {
      const fragment = await fetchRows(ids, false);
      for (const row of Array.from(fragment.querySelectorAll("tr[data-id]"))) {
        const current = document.getElementById(row.id);
        if (!current) continue;
        const box = current.querySelector("input[name=ids]");
        const fresh = row.querySelector("input[name=ids]");
        if (box && fresh) fresh.checked = box.checked;
        current.replaceWith(row);
      }
    } catch (error) {
      handleError(error);
    }
  }

  const refreshChanged = live.throttle(function () {
    const ids = Array.from(changedIds);
    changedIds = new Set();
    replaceRows(ids);
  }, 300);

  const refreshShown = live.throttle(function () {
    replaceRows(shownIds());
  }, 1000);

  const refreshCounts = live.throttle(async function () {
    const params = new URLSearchParams(window.location.search);
    params.set("part", "counts");
    try {
      live.swapById(await live.fetchFragment(urls.list + "?" + params.toString(), urls.login));
    } catch (error) {
      handleError(error);
    }
  }, 1000);

  // ------------------------------------------------------------------ selection
  function updateSelection() {
    const boxes = Array.from(document.querySelectorAll("#dl-rows input[name=ids]"));
    const ticked = boxes.filter((box) => box.checked).length;
    const label = document.getElementById("dl-selected-count");
    if (label) label.textContent = ticked + " selected";
    for (const button of document.querySelectorAll("[data-needs-selection]")) button.disabled = ticked === 0;
    const all = document.getElementById("dl-select-all");
    if (all) {
      all.checked = ticked > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  }

  root.addEventListener("change", function (event) {
    const target = event.target;
    if (target.id === "dl-select-all") {
      for (const box of document.querySelectorAll("#dl-rows input[name=ids]")) box.checked = target.checked;
      updateSelection();
    } else if (target.name === "ids") {
      updateSelection();
    }
  });
  document.body.addEventListener("htmx:afterSwap", updateSelection);

  // ------------------------------------------------------------------ the socket
  const socket = live.connect({
    url: root.dataset.socketUrl,
    liveElement: document.getElementById("dl-live"),
    probeUrl: urls.rows + "?ids=",
    loginUrl: urls.login,
    onFrame: function (frame) {
      if (frame.type === "deadletters.new") onNew(frame);
      else if (frame.type === "deadletters.changed") onChanged(frame);
      else if (frame.type === "redrive.progress") {
        refreshShown();
        refreshCounts();
      }
    },
    onOpen: function (reconnected) {
      refreshShown();
      refreshCounts();
      catchUp();
      // New dead letters that arrived while the socket was down are not on the page.
      if (reconnected && !unseen) {
        barButton.textContent = "The live connection dropped for a while — show the latest";
        bar.hidden = false;
      }
    },
  });
  root.dataset.ready = "1";
})();
