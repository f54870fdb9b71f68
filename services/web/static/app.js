// Enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The error summary takes focus (autofocus does it too; this covers browsers that skip it).
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }

  // The profile menu: a disclosure button. Without JS the list simply stays open.
  var button = document.querySelector(".profile-button");
  var menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (button && menu) {
    var setOpen = function (open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      menu.hidden = !open;
    };
    setOpen(false);
    button.addEventListener("click", function () { setOpen(button.getAttribute("aria-expanded") !== "true"); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") { setOpen(false); button.focus(); }
    });
  }

  // Copy buttons (the TOTP secret, the recovery codes).
  document.querySelectorAll("[data-copy]").forEach(function (copy) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      if (source && navigator.clipboard) { navigator.clipboard.writeText(source.textContent.trim()); copy.textContent = copy.getAttribute("data-copied"); }
    });
  });

  // Back from a provider: identity put the one-time login code in the fragment, which only we can read.
  var federated = document.getElementById("federated-form");
  if (federated) {
    var fragment = new URLSearchParams(window.location.hash.slice(1));
    history.replaceState(null, "", window.location.pathname);
    if (fragment.get("login_code")) {
      federated.querySelector('input[name="login_code"]').value = fragment.get("login_code");
      federated.submit();
    } else {
      document.getElementById("federated-status").textContent = federated.getAttribute("data-failed");
    }
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", { scope: "/" });
  }
})();
