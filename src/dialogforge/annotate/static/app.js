// Keyboard shortcuts for the annotation page. No framework, no build step.
(function () {
  "use strict";
  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" && (t.type === "text" || t.type === "password") || t.tagName === "TEXTAREA");
  }
  function cands() { return Array.prototype.slice.call(document.querySelectorAll("input[name=cand]")); }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("answer");
    var reject = document.getElementById("reject_all");
    if (form && reject) {
      reject.addEventListener("change", function () {
        if (reject.checked) cands().forEach(function (c) { c.checked = false; });
      });
      cands().forEach(function (c) {
        c.addEventListener("change", function () { if (c.checked) reject.checked = false; });
      });
    }
    var here = document.querySelector(".turns a.here");
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var k = ev.key;
      if (form && /^[1-9]$/.test(k)) {
        var box = document.querySelector("input[name=cand][data-key='" + k + "']");
        if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change")); ev.preventDefault(); }
      } else if (form && k === "0" && reject) {
        reject.checked = !reject.checked; reject.dispatchEvent(new Event("change")); ev.preventDefault();
      } else if (form && (k === "y" || k === "Y")) {
        document.getElementById("help_yes").checked = true; ev.preventDefault();
      } else if (form && (k === "n" || k === "N")) {
        document.getElementById("help_no").checked = true; ev.preventDefault();
      } else if (form && k === "Enter") {
        ev.preventDefault();
        form.requestSubmit();
      } else if (k === "u" || k === "U") {
        var undo = document.getElementById("undo");
        if (undo) { ev.preventDefault(); undo.form.requestSubmit(); }
      } else if (here && (k === "ArrowLeft" || k === "ArrowRight")) {
        var sib = k === "ArrowLeft" ? here.previousElementSibling : here.nextElementSibling;
        if (sib) { ev.preventDefault(); window.location.href = sib.getAttribute("href"); }
      }
    });
    document.documentElement.setAttribute("data-keys", "ready");
  });
})();
