/* Copy buttons: <button class="copy" data-copy="<input id>"> copies that input's value. */
(function () {
  function copy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { fallback(field); done(); });
    } else {
      fallback(field);
      done();
    }
  }
  function fallback(field) {
    field.focus();
    field.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected for a manual copy */ }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (button) { copy(button); }
  });
})();
