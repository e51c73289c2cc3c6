// Keyboard voting and "no vote before the pair has rendered".
// Without JavaScript the form still works as a plain POST with a redirect.
(function () {
  "use strict";
  function fieldsetIn(root) {
    return root && root.querySelector ? root.querySelector("[data-vote-buttons]") : null;
  }
  // Disable the buttons when a pair arrives; enable them after the browser has painted it
  // (two animation frames), so a held key or a stray click cannot vote on an unseen pair.
  function armAfterPaint(root, swapped) {
    var fieldset = fieldsetIn(root);
    if (!fieldset) { return; }
    fieldset.disabled = true;
    fieldset.dataset.ready = "false";
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        fieldset.disabled = false;
        fieldset.dataset.ready = "true";
        // The swap removed the button that had focus: put it on the new pair's buttons (the
        // group, not a button, so a stray Enter votes nothing), one Tab from the first one.
        var active = document.activeElement;
        if (swapped && (!active || active === document.body || !document.contains(active))) {
          fieldset.setAttribute("tabindex", "-1");
          fieldset.focus({ preventScroll: true });
        }
      });
    });
  }
  // A vote the server failed on (5xx) or that never reached it: say so on the pair, which
  // stays, so the next key press tries again (a vote that did land answers "already voted").
  function sayNotSent(message) {
    var box = document.getElementById("arena-error");
    if (!box) { return; }
    var line = document.createElement("p");
    line.className = "error";
    line.setAttribute("role", "alert");
    line.textContent = message;
    box.replaceChildren(line);
  }
  document.addEventListener("htmx:responseError", function (event) {
    sayNotSent("The server could not take your vote (error " + event.detail.xhr.status +
      "). Vote again in a moment.");
  });
  document.addEventListener("htmx:sendError", function () {
    sayNotSent("Your vote did not reach the server (no connection). Vote again when you are back online.");
  });
  document.addEventListener("htmx:load", function (event) { armAfterPaint(event.target, true); });
  document.addEventListener("DOMContentLoaded", function () { armAfterPaint(document, false); });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    var fieldset = fieldsetIn(document);
    if (!fieldset || fieldset.disabled || fieldset.dataset.ready !== "true") { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var buttons = fieldset.querySelectorAll("button[data-key]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].dataset.key.split(" ").indexOf(key) !== -1) {
        event.preventDefault();
        buttons[i].click();
        return;
      }
    }
  });
})();
