// The regrades page: while a regrade is grading, poll its progress and move its bar; once it is ready,
// reload so the server renders the change report and the Apply button. Text is set with textContent only.
"use strict";
(function () {
  const grading = document.querySelectorAll("section.regrade[data-status='grading']");
  grading.forEach(function (section) {
    const url = "/api/regrades/" + encodeURIComponent(section.dataset.id);
    const bar = section.querySelector("progress");
    const summary = section.querySelector(".summary");
    async function poll() {
      try {
        const response = await fetch(url, {credentials: "same-origin", cache: "no-store",
                                           headers: {"Accept": "application/json"}});
        if (response.ok) {
          const data = await response.json();
          if (data.status !== "grading") {
            window.location.reload();
            return;
          }
          bar.value = data.progress.done;
          summary.textContent = data.summary;
        }
      } catch (error) {
        // a network hiccup: try again below
      }
      window.setTimeout(poll, 1000);
    }
    window.setTimeout(poll, 500);
  });
})();
