// The dashboard's script: buttons and the send form post to the JSON API;
// the parts of the page marked data-live are refreshed from the server
// when the event stream says something changed. No framework, no build.
(function () {
  "use strict";
  var body = document.body;
  var base = body.dataset.base || "./";
  var runID = body.dataset.run || "";
  var flash = document.getElementById("flash");
  var liveState = document.getElementById("live-state");

  function say(msg, bad) {
    flash.textContent = msg;
    flash.className = "flash" + (bad ? " bad" : "");
    flash.hidden = false;
    clearTimeout(say.t);
    if (!bad) say.t = setTimeout(function () { flash.hidden = true; }, 4000);
  }

  function post(path, payload) {
    return fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: payload === undefined ? "" : payload,
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (j) {
        if (!resp.ok) throw new Error(j.error || (resp.status + " " + resp.statusText));
        return j;
      });
    });
  }

  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh) el.innerHTML = fresh.innerHTML;
      });
      var form = document.getElementById("send");
      if (form && !doc.getElementById("send")) form.closest("section").remove();
      if (form && form.channel.value === "") {
        var f2 = doc.getElementById("send");
        if (f2) form.channel.value = f2.channel.value;
      }
    }).catch(function () {}).finally(function () {
      refreshing = false;
      if (again) { again = false; refresh(); }
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-post]");
    if (!b) return;
    ev.preventDefault();
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    b.disabled = true;
    post(b.dataset.post).then(function (j) {
      say(b.textContent.trim() + ": done" + (j.run ? " (run is " + j.run.status + ")" : ""));
      refresh();
    }).catch(function (err) {
      b.disabled = false;
      say(b.textContent.trim() + " failed: " + err.message, true);
    });
  });

  var form = document.getElementById("send");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var channel = form.channel.value.trim(), msg = form.message.value;
      try { JSON.parse(msg); } catch (e) { say("The message is not valid JSON: " + e.message, true); return; }
      var btn = form.querySelector("button");
      btn.disabled = true;
      post("api/runs/" + encodeURIComponent(form.dataset.run) + "/send/" + encodeURIComponent(channel), msg).then(function () {
        say("Message sent on \u201c" + channel + "\u201d.");
        form.message.value = "";
        refresh();
      }).catch(function (err) {
        say("Send failed: " + err.message, true);
      }).finally(function () { btn.disabled = false; });
    });
  }

  if (window.EventSource) {
    var url = base + "api/events" + (runID ? "?run=" + encodeURIComponent(runID) : "");
    var es = new EventSource(url);
    var timer = null;
    function soon() { clearTimeout(timer); timer = setTimeout(refresh, 150); }
    es.addEventListener("ready", function () { liveState.textContent = "live"; liveState.className = "live on"; });
    es.addEventListener("run", soon);
    if (runID) es.addEventListener("tick", soon);
    es.onerror = function () { liveState.textContent = "reconnecting"; liveState.className = "live off"; };
  }
})();
