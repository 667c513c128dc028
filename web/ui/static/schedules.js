// The schedules page's create form: posts the fields to api/schedules as
// JSON and refreshes the list. The buttons of each schedule are app.js's
// data-post buttons.
(function () {
  "use strict";
  var form = document.getElementById("new-schedule");
  if (!form) return;
  var base = document.body.dataset.base || "./";
  var flash = document.getElementById("flash");
  function say(msg, bad) {
    flash.textContent = msg;
    flash.className = "flash" + (bad ? " bad" : "");
    flash.hidden = false;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var spec = {};
    ["name", "workflow", "cron", "zone", "every", "jitter", "overlap", "catch_up"].forEach(function (k) {
      var v = form[k].value.trim();
      if (v !== "") spec[k] = v;
    });
    var input = form.input.value.trim();
    if (input !== "") {
      try { spec.input = JSON.parse(input); } catch (e) { say("The input is not valid JSON: " + e.message, true); return; }
    }
    var btn = form.querySelector("button");
    btn.disabled = true;
    fetch(base + "api/schedules", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(spec),
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (j) {
        if (!resp.ok) throw new Error(j.error || (resp.status + " " + resp.statusText));
        say("Schedule \u201c" + spec.name + "\u201d created.");
        form.reset();
        return fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-schedules");
          var el = document.getElementById("live-schedules");
          if (fresh && el) el.innerHTML = fresh.innerHTML;
        });
      });
    }).catch(function (err) {
      say("Create failed: " + err.message, true);
    }).finally(function () { btn.disabled = false; });
  });
})();
