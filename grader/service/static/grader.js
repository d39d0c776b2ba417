// The grader's only script: on a submission page, poll the status until the grade is final,
// then reload so the server renders the feedback. Text is set with textContent (never as HTML).
"use strict";
(function () {
  const box = document.getElementById("submission");
  if (!box || box.dataset.final === "true") {
    return;
  }
  const statusLine = document.getElementById("status");
  const url = "/api/submissions/" + encodeURIComponent(box.dataset.id);
  const started = Date.now();
  let delay = 400;

  function describe(data) {
    const waited = Math.round((Date.now() - started) / 1000);
    let text = data.status === "running" ? "running: grading your notebook" : "queued: waiting for a grader";
    if (data.message) {
      text += " (" + data.message + ")";
    }
    return text + " · " + waited + " s";
  }

  async function poll() {
    try {
      const response = await fetch(url, {credentials: "same-origin", cache: "no-store",
                                         headers: {"Accept": "application/json"}});
      if (response.ok) {
        const data = await response.json();
        if (data.final) {
          window.location.reload();
          return;
        }
        statusLine.textContent = describe(data);
        statusLine.className = "status status-" + data.status;
      }
    } catch (error) {
      // a network hiccup: try again below
    }
    delay = Math.min(delay * 1.3, 3000);
    window.setTimeout(poll, delay);
  }

  window.setTimeout(poll, delay);
})();
