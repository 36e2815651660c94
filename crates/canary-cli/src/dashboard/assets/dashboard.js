// eks-canary dashboard: live updates and the operators' buttons. No library, no request
// anywhere but to this dashboard.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || document.body.dataset.live !== "1") { return; }
  var fingerprint = document.body.dataset.fingerprint;
  var live = document.getElementById("live");
  var updated = document.getElementById("updated");
  var message = document.getElementById("message");

  function say(text, bad) {
    message.textContent = text;
    message.className = bad ? "message error" : "message";
  }

  async function refresh() {
    try {
      var r = await fetch("api/board", { cache: "no-store" });
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      var doc = await r.json();
      live.className = "live";
      live.textContent = "live";
      updated.textContent = "read at " + doc.read_at_utc + " UTC";
      if (doc.fingerprint === fingerprint) { return; }
      var f = await fetch("fragment", { cache: "no-store" });
      if (!f.ok) { throw new Error(f.status + " " + f.statusText); }
      var html = await f.text();
      var open = {};
      board.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
      board.innerHTML = html;
      board.querySelectorAll("details[id]").forEach(function (d) {
        if (Object.prototype.hasOwnProperty.call(open, d.id)) { d.open = open[d.id]; }
      });
      fingerprint = doc.fingerprint;
      document.body.dataset.fingerprint = fingerprint;
    } catch (e) {
      live.className = "live offline";
      live.textContent = "not updating (" + e.message + ")";
    }
  }

  board.addEventListener("click", async function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) { return; }
    var action = b.dataset.action;
    var service = b.dataset.service;
    var reason = window.prompt("Why? (" + b.textContent + " " + service + ": " + b.dataset.what + ")", "");
    if (reason === null) { return; }
    if (!window.confirm(b.textContent + " " + service + "?\n" + b.dataset.what + "\nReason: " + reason)) { return; }
    b.disabled = true;
    try {
      var r = await fetch("api/" + action, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ group: Number(b.dataset.group), service: service, reason: reason })
      });
      var doc = await r.json().catch(function () { return { error: r.status + " " + r.statusText }; });
      if (r.ok) { say(doc.message, false); } else { say(doc.error || (r.status + " " + r.statusText), true); }
    } catch (e) {
      say(e.message, true);
    }
    b.disabled = false;
    fingerprint = "";
    refresh();
  });

  refresh();
  setInterval(refresh, 2000);
}());
