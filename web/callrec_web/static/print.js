// The print button of the record of processing: shown only when scripts run (the browser's
// own print command works without it), and kept out of inline handlers for the CSP.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print");
  if (!button) { return; }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
