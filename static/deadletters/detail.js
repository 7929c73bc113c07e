// One dead letter, kept current over /ws/dead-letters/ without reloading.
//
// Its status, replays and audit trail (the #dl-state and #dl-audit partials) are fetched
// again when a frame may concern it: `deadletters.changed` naming it, `redrive.progress`
// (a job does not name its items), `deadletters.new` (a failed replay of it may have come
// back). The action panel is not replaced, so a half-typed discard reason survives; its
// parts are shown or hidden by the new status (each lists the statuses it applies to),
// and the server refuses an action that no longer applies anyway (409).
(function () {
  "use strict";

  const root = document.getElementById("dead-letter");
  if (!root || !window.EventHubDeadLetters) return;
  const live = window.EventHubDeadLetters;
  const id = Number(root.dataset.id);
  const FINAL = ["resolved", "discarded"];

  function currentStatus() {
    const state = document.getElementById("dl-state");
    return state ? state.dataset.status : "";
  }

  function applyStatus(before, status) {
    const panel = document.getElementById("dl-actions");
    if (!panel) return;
    let any = false;
    for (const part of panel.querySelectorAll("[data-statuses]")) {
      const allowed = part.dataset.statuses.split(" ").includes(status);
      part.hidden = !allowed;
      any = any || allowed;
    }
    const none = document.getElementById("dl-no-actions");
    if (none) {
      none.hidden = any;
      none.textContent = "Nothing left to do: it is " + status + ".";
    }
    const note = document.getElementById("dl-actions-note");
    if (note && before && before !== status) {
      note.textContent = "Its status changed from " + before + " to " + status + " while you were looking.";
      note.hidden = false;
    }
  }

  const refresh = live.throttle(async function () {
    const before = currentStatus();
    try {
      live.swapById(await live.fetchFragment(root.dataset.stateUrl, root.dataset.loginUrl));
    } catch (error) {
      if (error instanceof live.SignedOut) socket.signedOut();
      return;
    }
    applyStatus(before, currentStatus());
  }, 500);

  const socket = live.connect({
    url: root.dataset.socketUrl,
    liveElement: document.getElementById("dl-live"),
    probeUrl: root.dataset.stateUrl,
    loginUrl: root.dataset.loginUrl,
    onFrame: function (frame) {
      if (frame.type === "deadletters.changed") {
        if ((frame.ids || []).map(Number).includes(id)) refresh();
      } else if (frame.type === "redrive.progress" || frame.type === "deadletters.new") {
        if (!FINAL.includes(currentStatus())) refresh();
      }
    },
    onOpen: refresh,
  });
  root.dataset.ready = "1";
})();
