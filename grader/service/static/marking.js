// The marking page's keys (grader/service/marking.py lists them on the page): j/n/→ next answer,
// k/p/← previous, 1–9 tick a criterion, c the comment, s or Ctrl+Enter save. No HTML is ever built here.
"use strict";
(function () {
  const form = document.getElementById("grade-form");
  if (!form) {
    return;
  }
  const boxes = Array.from(form.querySelectorAll("input[name=criteria]"));
  const ticked = document.getElementById("ticked");

  function total() {
    const sum = boxes.filter((b) => b.checked).reduce((acc, b) => acc + Number(b.dataset.points), 0);
    ticked.textContent = String(Math.round(sum * 100) / 100);
  }

  function follow(id) {
    const link = document.getElementById(id);
    if (link && link.href) {
      window.location.assign(link.href);
    }
  }

  boxes.forEach((b) => b.addEventListener("change", total));
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    const typing = event.target instanceof HTMLElement && event.target.closest("textarea, input[type=text]");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const key = event.key;
    if (key === "j" || key === "n" || key === "ArrowRight") {
      follow("next");
    } else if (key === "k" || key === "p" || key === "ArrowLeft") {
      follow("prev");
    } else if (/^[1-9]$/.test(key) && boxes[Number(key) - 1]) {
      const box = boxes[Number(key) - 1];
      box.checked = !box.checked;
      total();
    } else if (key === "s") {
      form.requestSubmit();
    } else if (key === "c") {
      document.getElementById("comment").focus();
    } else {
      return;
    }
    event.preventDefault();
  });
  total();
})();
