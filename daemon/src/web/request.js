// Agent Vault: the approval page, live (see daemon/src/web/approval.rs).
//
// - Times are sent in UTC (<time datetime=...>); they are shown here in
//   this device's own time zone.
// - "Expires in" counts down each second, from the time left when the
//   page was made (this device's clock may be off; a duration is not).
// - While the request waits, its state is asked every two seconds; when
//   it was decided elsewhere (another device, the terminal), expired or
//   was cancelled, the page is loaded again to show that. A code being
//   typed is not lost: the page only reloads once the form is moot.
// Without this script the page still works; it is just not live.
"use strict";

(function () {
  function localTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.textContent = d.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
        timeZoneName: "short",
      });
      el.title = el.getAttribute("datetime");
    });
  }

  function span(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + ("0" + (s % 60)).slice(-2) + "s";
    return Math.floor(s / 3600) + "h " + ("0" + Math.floor((s % 3600) / 60)).slice(-2) + "m";
  }

  function countdown() {
    var el = document.querySelector("[data-expires-in]");
    if (!el) return;
    var end = Date.now() + Number(el.getAttribute("data-expires-in"));
    function tick() {
      var left = end - Date.now();
      el.textContent = span(left);
      if (left > 0) setTimeout(tick, 250);
    }
    tick();
  }

  function follow() {
    var card = document.querySelector("[data-request][data-state]");
    if (!card || !window.fetch) return;
    var id = card.getAttribute("data-request");
    var shown = card.getAttribute("data-state") + "/" + card.getAttribute("data-approvals");
    if (card.getAttribute("data-state") !== "pending") return;
    function poll() {
      fetch("/approve/" + encodeURIComponent(id) + "/state", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { state: "gone", approvals: 0 }; })
        .then(function (now) {
          if (now.state + "/" + now.approvals !== shown) {
            location.replace(location.pathname);
          } else {
            setTimeout(poll, 2000);
          }
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  function start() {
    localTimes();
    countdown();
    follow();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
