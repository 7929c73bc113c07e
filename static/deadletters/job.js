// A redrive job's live progress from `redrive.progress` frames on /ws/dead-letters/.
//
// Each frame of this job moves the bar and the counters at once (numbers only, set with
// textContent); the items table, audit trail and buttons (the #job-* partials) are
// fetched again at most once a second, and once more when the job reaches an end state.
(function () {
  "use strict";

  const root = document.getElementById("redrive-job");
  if (!root || !window.EventHubDeadLetters) return;
  const live = window.EventHubDeadLetters;
  const jobId = Number(root.dataset.jobId);
  const STATES = ["pending", "running", "cancelling", "cancelled", "done", "failed"];

  function setText(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = String(value);
  }

  function show(frame) {
    const total = Number(frame.total) || 0;
    const finished = (Number(frame.done) || 0) + (Number(frame.failed) || 0) + (Number(frame.skipped) || 0);
    setText("job-finished", finished);
    setText("job-total", total);
    setText("job-done", Number(frame.done) || 0);
    setText("job-failed", Number(frame.failed) || 0);
    setText("job-skipped", Number(frame.skipped) || 0);
    const bar = document.getElementById("job-bar");
    if (bar) {
      bar.firstElementChild.style.width = (total ? Math.round((100 * finished) / total) : 100) + "%";
      bar.setAttribute("aria-valuenow", String(finished));
      bar.setAttribute("aria-valuemax", String(total));
    }
    if (STATES.includes(frame.state)) {
      const badge = document.getElementById("job-state");
      if (badge) {
        badge.className = "status status-" + frame.state;
        badge.textContent = frame.state;
      }
      if (bar) bar.dataset.state = frame.state;
    }
  }

  const progress = document.getElementById("job-progress");
  let shownState = progress ? progress.dataset.state : "";

  const refresh = live.throttle(async function () {
    try {
      live.swapById(await live.fetchFragment(root.dataset.stateUrl, root.dataset.loginUrl));
      shownState = document.getElementById("job-progress").dataset.state;
    } catch (error) {
      if (error instanceof live.SignedOut) socket.signedOut();
    }
  }, 1000);

  const socket = live.connect({
    url: root.dataset.socketUrl,
    liveElement: document.getElementById("dl-live"),
    probeUrl: root.dataset.stateUrl,
    loginUrl: root.dataset.loginUrl,
    onFrame: function (frame) {
      if (frame.type !== "redrive.progress" || Number(frame.job) !== jobId) return;
      show(frame);
      if (frame.state !== shownState || frame.state === "running") refresh();
    },
    onOpen: refresh,
  });
  root.dataset.ready = "1";
})();
