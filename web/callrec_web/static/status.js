// Live line status: poll /api/v1/status every 2 s and update the page in place.
// Without JavaScript the page shows the snapshot it was rendered with. The words come from
// the page (#labels), so this file holds no user-visible text.
"use strict";
(function () {
  var root = document.getElementById("status");
  if (!root || !window.fetch) { return; }
  var source = root.getAttribute("data-source");
  var labels = {};
  document.querySelectorAll("#labels [data-key]").forEach(function (el) {
    labels[el.getAttribute("data-key")] = el.textContent;
  });
  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function t(key, fallback, values) {
    var text = labels[key] !== undefined ? labels[key] : (fallback !== undefined ? fallback : key);
    Object.keys(values || {}).forEach(function (k) { text = text.replace("{" + k + "}", values[k]); });
    return text;
  }
  function setText(name, text) {
    var el = field(name);
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localTime(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function duration(s) {
    if (typeof s !== "number" || s < 0) { return ""; }
    var r = Math.round(s), h = Math.floor(r / 3600), m = Math.floor((r % 3600) / 60), sec = r % 60;
    return h ? h + ":" + pad(m) + ":" + pad(sec) : m + ":" + pad(sec);
  }
  function callText(call) {
    if (!call) { return t("st_none"); }
    var parts = [];
    if (call.direction) { parts.push(t("direction_" + call.direction)); }
    if (call.answered === true) { parts.push(t("st_answered")); }
    if (call.answered === false) { parts.push(t("st_not_answered")); }
    if (call.ring_count) { parts.push(t("st_rings", "", { n: Math.round(call.ring_count) })); }
    if (typeof call.duration_s === "number") { parts.push(duration(call.duration_s)); }
    return parts.join(", ");
  }
  function lastText(last) {
    if (!last || !last.outcome) { return t("st_none"); }
    var text = t("outcome_" + last.outcome, last.outcome);
    if (last.direction === "in" || last.direction === "out") {
      text += " (" + t("direction_" + last.direction) + ")";
    }
    var at = localTime(last.at);
    return at ? text + ", " + at : text;
  }
  function flag(value, yes, no) {
    return value === true ? t(yes) : (value === false ? t(no) : "—");
  }
  function num(value) { return typeof value === "number" ? String(Math.round(value)) : "—"; }
  var words = {};  // the server's translations of this refresh (/api/v1/status?lang=)
  function countsText(counts) {
    var names = words.counters || {};
    var shown = Object.keys(counts || {}).sort().filter(function (k) { return counts[k]; })
      .map(function (k) { return (names[k] || k.replace(/_/g, " ")) + " " + counts[k]; });
    return shown.length ? shown.join(", ") : t("st_none");
  }
  function renderSip(sip) {
    if (!sip || !field("sip_calls")) { return; }  // the page shows a SIP line only if it has one
    setText("sip_calls", num(sip.calls));
    setText("sip_recording", num(sip.recording));
    setText("sip_outcomes", countsText(sip.outcomes));
    setText("sip_received", num(sip.messages.received));
    setText("sip_sent", num(sip.messages.sent));
    setText("sip_dropped", countsText(sip.messages.dropped));
    setText("sip_forwarded", num(sip.media.forwarded));
    setText("sip_ignored", countsText(sip.media.ignored));
  }
  function render(snap) {
    words = snap.shown || {};
    var state = labels["state_" + snap.state] !== undefined ? snap.state : "unknown";
    setText("state", t("state_" + state)).className = "state state-" + state;
    var reason = words.reason !== undefined ? words.reason : snap.not_recorded_reason;
    setText("reason", reason ? ": " + reason : "");
    setText("private", snap.next_call_private_until ?
      t("st_next_private", "", { at: localTime(snap.next_call_private_until) }) :
      t("st_not_pressed"));
    setText("since", localTime(snap.since) || "—");
    setText("state_for", typeof snap.state_for_s === "number" ?
      "(" + t("st_for", "", { d: duration(snap.state_for_s) }) + ")" : "");
    setText("recording", flag(snap.recording, "st_on", "st_off")).className =
      "led " + (snap.recording ? "led-on" : "led-off");
    setText("call", callText(snap.call));
    setText("last_call", lastText(snap.last_call));
    var board = snap.board || {};
    setText("running", flag(snap.running, "st_running", "st_stopped"));
    var mcu = flag(board.mcu_connected, "st_connected", "st_lost");
    if (board.mcu_connected && board.mcu_version) { mcu += " (" + board.mcu_version + ")"; }
    setText("mcu", mcu);
    setText("audio", flag(board.audio_open, "st_open", "st_not_open"));
    var clock = snap.clock;
    setText("clock", clock ? t(clock.synchronised ? "st_clock_sync" : "st_clock_unsync", "",
      { source: clock.source || "—" }) : "—");
    field("clock_warning").hidden = !clock || clock.synchronised;
    setText("updated", localTime(snap.updated) || "—");
    var texts = words.faults || (snap.faults || []).map(function (f) {
      return (f.name ? f.name + ": " : "") + (f.detail || t(f.code));
    });
    var list = field("faults");
    var shown = Array.prototype.map.call(list.children, function (li) { return li.textContent; });
    if (shown.join("\n") !== texts.join("\n")) {
      list.textContent = "";
      texts.forEach(function (text) {
        var li = document.createElement("li");
        li.textContent = text;
        list.appendChild(li);
      });
    }
    field("no-faults").hidden = texts.length > 0;
    renderSip(snap.sip);
  }
  var timer = null, failures = 0;
  function stale() { field("stale").hidden = false; }
  function poll() {
    if (document.hidden || timer === null) { return; }  // no work for a tab nobody looks at
    fetch(source, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) {
          clearInterval(timer);
          timer = null;
          stale();
          return null;
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (snap) {
        if (snap) { failures = 0; field("stale").hidden = true; render(snap); }
      })
      .catch(function () { failures += 1; if (failures >= 3) { stale(); } });
  }
  timer = setInterval(poll, 2000);
  document.addEventListener("visibilitychange", poll);
})();
