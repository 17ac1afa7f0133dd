// Agent Vault: the two passkey ceremonies (add a passkey, approve with it).
// With /static/device.js, one of the two scripts the pages load; the CSP allows nothing else. It talks
// only to this origin, and the daemon verifies everything it sends.
"use strict";

(function () {
  function toBytes(b64url) {
    let s = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function say(text, cls) {
    const el = document.getElementById("passkey-status");
    if (el) {
      el.textContent = text;
      el.className = cls || "";
    }
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try {
      data = await res.json();
    } catch (_) {
      // Not JSON: keep the status code as the message.
    }
    if (!res.ok) throw new Error(data.error || "the daemon answered " + res.status);
    return data;
  }

  async function register(button) {
    const csrf = button.dataset.csrf;
    const options = await post("/passkeys/register/start", { csrf: csrf });
    const pk = options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    pk.user.id = toBytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) {
      c.id = toBytes(c.id);
    });
    const cred = await navigator.credentials.create({ publicKey: pk });
    const credential = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(cred.response.attestationObject),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
      },
      extensions: cred.getClientExtensionResults(),
    };
    await post("/passkeys/register/finish", { csrf: csrf, credential: credential });
    say("Passkey added.", "ok");
    window.location.reload();
  }

  async function approve(button) {
    const csrf = button.dataset.csrf;
    const base = "/approve/" + encodeURIComponent(button.dataset.request) + "/passkey/";
    const select = document.getElementById("window");
    const body = { csrf: csrf };
    if (select) body.window = Number(select.value);
    const options = await post(base + "start", body);
    const pk = options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) {
      c.id = toBytes(c.id);
    });
    const a = await navigator.credentials.get({ publicKey: pk });
    const credential = {
      id: a.id,
      rawId: toB64url(a.rawId),
      type: a.type,
      response: {
        authenticatorData: toB64url(a.response.authenticatorData),
        clientDataJSON: toB64url(a.response.clientDataJSON),
        signature: toB64url(a.response.signature),
        userHandle: a.response.userHandle ? toB64url(a.response.userHandle) : null,
      },
      extensions: a.getClientExtensionResults(),
    };
    const result = await post(base + "finish", { csrf: csrf, credential: credential });
    say(result.outcome === "partial" ? "Approved; another device must approve too." : "Approved.", "ok");
    window.location.reload();
  }

  function wire(id, ceremony) {
    const button = document.getElementById(id);
    if (!button) return;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser cannot use passkeys.", "bad");
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      say("Waiting for your passkey\u2026", "muted");
      ceremony(button).catch(function (e) {
        say((e && e.message) || String(e), "bad");
        button.disabled = false;
      });
    });
  }

  wire("passkey-register", register);
  wire("passkey-approve", approve);
})();
