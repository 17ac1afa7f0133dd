// Agent Vault: this browser's device proof (see daemon/src/devices.rs).
//
// Cookies ignore ports, so a page that another program serves on this
// machine (say localhost:8080) receives the device cookie of the approval
// page (localhost:9999). localStorage is kept per origin, port included:
// what is stored here is out of that page's reach. At pairing, this script
// makes 32 random bytes, keeps them here and sends them with the pairing
// form; afterwards it appends them to every form token of these pages, and
// the daemon refuses a device's forms without them. Nothing here is sent
// anywhere but to this origin.
"use strict";

(function () {
  var KEY = "av-proof";

  function fresh() {
    var bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function stored() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (_) {
      return null;
    }
  }

  function ready() {
    // The pairing form: a new proof for the device about to be paired.
    var field = document.querySelector("input[name=proof]");
    if (field) {
      var proof = fresh();
      try {
        window.localStorage.setItem(KEY, proof);
        field.value = proof;
      } catch (_) {
        // No storage (a private window may refuse it): pair without.
      }
    }
    // Every form token of a paired device carries the proof.
    var mine = stored();
    if (!mine) return;
    document.querySelectorAll("input[name=csrf]").forEach(function (input) {
      if (input.value.indexOf("~") < 0) input.value = input.value + "~" + mine;
    });
    document.querySelectorAll("[data-csrf]").forEach(function (el) {
      if (el.dataset.csrf.indexOf("~") < 0) el.dataset.csrf = el.dataset.csrf + "~" + mine;
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
