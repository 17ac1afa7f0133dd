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
//
// It also keeps watch (see daemon/src/web/watch.rs): it remembers the
// audit log's head and the paired devices it has seen, and warns on the
// page when the log went backwards or a device it has not seen was paired.
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

  function load(key) {
    try {
      return JSON.parse(window.localStorage.getItem(key));
    } catch (_) {
      return null;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (_) {}
  }

  // A warning at the top of the page, until its button is pressed.
  function warn(id, title, text, button, onAck) {
    var main = document.querySelector("main");
    if (!main || document.getElementById(id)) return;
    var card = document.createElement("div");
    card.className = "card";
    card.id = id;
    card.setAttribute("role", "alert");
    var h = document.createElement("h2");
    h.className = "bad";
    h.textContent = title;
    var p = document.createElement("p");
    p.textContent = text;
    var ack = document.createElement("button");
    ack.type = "button";
    ack.textContent = button;
    ack.addEventListener("click", function () {
      onAck();
      card.remove();
    });
    card.appendChild(h);
    card.appendChild(p);
    card.appendChild(ack);
    main.insertBefore(card, main.firstChild);
  }

  function watch(now) {
    var head = now.audit;
    var seen = load("av-audit-head");
    var backwards =
      seen && (head.seq < seen.seq || (head.seq === seen.seq && head.hash !== seen.hash));
    if (backwards) {
      warn(
        "av-audit-backwards",
        "The audit log went backwards",
        "This device last saw " + seen.seq + " audit entries (" + seen.at + "); agent-vaultd now shows " +
          head.seq + (head.seq === seen.seq ? " with a different last entry" : "") +
          ". The log was cut short, rolled back or replaced. Check it with: agent-vault audit verify --anchor <your anchor file or topic>",
        "I have checked; watch from here",
        function () {
          save("av-audit-head", { seq: head.seq, hash: head.hash, at: new Date().toISOString() });
        }
      );
    } else {
      save("av-audit-head", { seq: head.seq, hash: head.hash, at: new Date().toISOString() });
    }
    var known = load("av-known-devices");
    var ids = now.devices.map(function (d) { return d.id; });
    if (!Array.isArray(known)) {
      // First look from this device: everything paired so far is known.
      save("av-known-devices", ids);
      return;
    }
    var fresh = now.devices.filter(function (d) {
      return d.id !== now.me && known.indexOf(d.id) < 0;
    });
    if (fresh.length === 0) return;
    warn(
      "av-new-devices",
      fresh.length === 1 ? "A new device was paired" : fresh.length + " new devices were paired",
      fresh.map(function (d) { return "\u201c" + d.label + "\u201d at " + d.pairedAt; }).join("; ") +
        ". Each can approve requests. If one was not you, revoke it on the dashboard.",
      "These are mine",
      function () {
        save("av-known-devices", known.concat(fresh.map(function (d) { return d.id; })));
      }
    );
  }

  function keepWatch() {
    if (!stored() || !window.fetch) return;
    fetch("/watch", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (now) { if (now) watch(now); })
      .catch(function () {});
  }

  function start() {
    ready();
    keepWatch();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
