// berth dashboard: the theme button, the live deployment log with its
// status and stage timings, the live runtime log of an app, and the live
// status of the apps listed. Every page
// works without this file; it never uses innerHTML. The event streams
// send ": ping" comments while nothing happens, to keep proxies from
// closing them: EventSource drops comments without an event (the SSE
// spec), so the handlers below only ever see their named events.
"use strict";
(function () {
  var root = document.documentElement;
  try {
    var saved = localStorage.getItem("berth-theme");
    if (saved === "light" || saved === "dark") root.setAttribute("data-theme", saved);
  } catch (e) { /* storage may be off */ }

  function currentTheme() {
    var t = root.getAttribute("data-theme");
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.getElementById("theme");
    if (btn) {
      var label = function () { btn.textContent = currentTheme() === "dark" ? "Light theme" : "Dark theme"; };
      label();
      if (window.matchMedia) {
        var mq = window.matchMedia("(prefers-color-scheme: dark)");
        if (mq.addEventListener) mq.addEventListener("change", label);
      }
      btn.addEventListener("click", function () {
        var next = currentTheme() === "dark" ? "light" : "dark";
        root.setAttribute("data-theme", next);
        try { localStorage.setItem("berth-theme", next); } catch (e) { /* ignore */ }
        label();
      });
    }
    followLog();
    followRuntime();
  });

  // duration formats milliseconds as Go prints a time.Duration rounded to
  // 10ms ("450ms", "1.23s", "2m3.5s"), as the server renders stages.
  function duration(ms) {
    ms = Math.max(0, Math.round(ms / 10) * 10);
    if (ms === 0) return "0s";
    if (ms < 1000) return ms + "ms";
    var trim = function (x) { return x.toFixed(2).replace(/\.?0+$/, ""); };
    var sec = ms / 1000;
    if (sec < 60) return trim(sec) + "s";
    var min = Math.floor(sec / 60), h = Math.floor(min / 60);
    sec -= min * 60;
    return (h ? h + "h" : "") + (min % 60) + "m" + trim(sec) + "s";
  }

  // utc formats a time as the server does ("2006-01-02 15:04:05Z").
  function utc(t) {
    var d = new Date(t);
    return isNaN(d) ? "" : d.toISOString().slice(0, 19).replace("T", " ") + "Z";
  }

  // showStages redraws the stage timings of deployment d; a running stage
  // shows how long it has run so far.
  function showStages(el, d) {
    if (!el || !d || !Array.isArray(d.stages)) return;
    el.dataset.updated = "1";
    while (el.firstChild) el.removeChild(el.firstChild);
    d.stages.forEach(function (st) {
      var span = document.createElement("span");
      span.dataset.stage = String(st.stage);
      if (st.ended_at) {
        span.textContent = st.stage + " " + duration(new Date(st.ended_at) - new Date(st.started_at));
      } else {
        span.dataset.start = String(st.started_at);
        span.textContent = st.stage + " …";
      }
      el.appendChild(span);
      el.appendChild(document.createTextNode(" "));
    });
  }

  // ansi appends text to parent as spans styled by its SGR escapes, the
  // same classes as the server renders (web/ansi.go).
  function ansi(parent, text) {
    var bold = false, fg = -1, buf = "";
    function flush() {
      if (!buf) return;
      var cls = [];
      if (bold) cls.push("b");
      if (fg >= 0) cls.push("fg" + fg);
      if (cls.length) {
        var s = document.createElement("span");
        s.className = cls.join(" ");
        s.textContent = buf;
        parent.appendChild(s);
      } else {
        parent.appendChild(document.createTextNode(buf));
      }
      buf = "";
    }
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c !== 27) {
        if (c >= 32 || c === 9) buf += text[i];
        continue;
      }
      if (text[i + 1] !== "[") { i++; continue; }
      var j = i + 2;
      while (j < text.length && (text.charCodeAt(j) < 0x40 || text.charCodeAt(j) > 0x7e)) j++;
      if (j >= text.length) break;
      if (text[j] === "m") {
        flush();
        var params = text.slice(i + 2, j) || "0";
        params.split(";").forEach(function (p) {
          var n = parseInt(p, 10);
          if (isNaN(n)) return;
          if (n === 0) { bold = false; fg = -1; }
          else if (n === 1) bold = true;
          else if (n === 22) bold = false;
          else if (n >= 30 && n <= 37) fg = n - 30;
          else if (n === 39) fg = -1;
          else if (n >= 90 && n <= 97) fg = n - 90 + 8;
        });
      }
      i = j;
    }
    flush();
  }

  function followLog() {
    var log = document.getElementById("log");
    var status = document.getElementById("status");
    if (!log || !log.dataset.follow || !window.EventSource) return;
    // The stream starts after the last line the page shows.
    var es = new EventSource(log.dataset.stream);
    var stages = document.getElementById("stages");
    // While a stage runs, its time counts up each second.
    var tick = setInterval(function () {
      if (!stages) return;
      stages.querySelectorAll("span[data-start]").forEach(function (span) {
        span.textContent = span.dataset.stage + " " + duration(Date.now() - new Date(span.dataset.start)) + " …";
      });
    }, 1000);
    function setStatus(d) {
      if (!status || !d || !d.status) return;
      status.textContent = d.status;
      status.className = "status s-" + d.status;
      showStages(stages, d);
      var err = document.getElementById("dep-error");
      if (err && d.error) { err.textContent = String(d.error); err.hidden = false; }
      var fin = document.getElementById("finished");
      if (fin && d.finished_at) { fin.textContent = "Finished " + utc(d.finished_at) + "."; fin.hidden = false; }
      // An ended deployment can no longer be cancelled.
      var cancel = document.getElementById("cancel");
      if (cancel && d.finished_at) cancel.remove();
    }
    es.addEventListener("log", function (ev) {
      var line;
      try { line = JSON.parse(ev.data); } catch (e) { return; }
      var li = document.createElement("li");
      li.className = "line";
      ansi(li, String(line.text || ""));
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(li);
      if (atEnd) log.scrollTop = log.scrollHeight;
    });
    es.addEventListener("status", function (ev) {
      try { setStatus(JSON.parse(ev.data)); } catch (e) { /* ignore */ }
    });
    es.addEventListener("end", function (ev) {
      try { setStatus(JSON.parse(ev.data)); } catch (e) { /* ignore */ }
      es.close();
      clearInterval(tick);
      log.dataset.done = "1";
      // The deployment ended: it can no longer be cancelled.
      var cancel = document.getElementById("cancel");
      if (cancel) cancel.remove();
    });
    es.onerror = function () {
      // The browser reconnects by itself while the stream is open; once
      // the deployment ended, stop.
      if (log.dataset.done) es.close();
    };
  }

  // followRuntime follows an app's runtime log (the page shows its last
  // lines) with Pause/Resume and Clear. Paused lines are held, not lost,
  // up to the page's limit; the oldest lines go past it.
  function followRuntime() {
    var log = document.getElementById("runlog");
    if (!log || !log.dataset.stream || !window.EventSource) return;
    var controls = document.getElementById("runlog-controls");
    var pause = document.getElementById("runlog-pause");
    var clear = document.getElementById("runlog-clear");
    var state = document.getElementById("runlog-state");
    var max = 2000, held = [], paused = false, es = null, wait = 2000;
    if (controls) controls.hidden = false;
    function say(text) { if (state) state.textContent = text; }
    function append(text) {
      var li = document.createElement("li");
      li.className = "line";
      ansi(li, text);
      log.appendChild(li);
      while (log.children.length > max) log.removeChild(log.firstChild);
    }
    function connect(url) {
      es = new EventSource(url);
      es.addEventListener("open", function () { say(paused ? "Paused." : "Following live."); });
      es.addEventListener("log", function (ev) {
        var line;
        try { line = JSON.parse(ev.data); } catch (e) { return; }
        wait = 2000;
        var text = String(line.text || "");
        if (paused) {
          held.push(text);
          if (held.length > max) held.shift();
          say("Paused: " + held.length + " new line(s) held.");
          return;
        }
        var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        append(text);
        if (atEnd) log.scrollTop = log.scrollHeight;
      });
      es.addEventListener("end", function () {
        // The containers stopped (a new release replaced them): follow
        // the new ones from their last lines, waiting longer each time
        // nothing runs.
        es.close();
        say("The containers stopped; following the new ones shortly.");
        setTimeout(function () { connect(log.dataset.stream.replace(/tail=0$/, "tail=20")); }, wait);
        wait = Math.min(wait * 2, 60000);
      });
      es.onerror = function () {
        if (es.readyState === 2) say("The log stream closed: reload the page to follow again.");
      };
    }
    if (pause) {
      pause.addEventListener("click", function () {
        paused = !paused;
        pause.setAttribute("aria-pressed", paused ? "true" : "false");
        pause.textContent = paused ? "Resume" : "Pause";
        if (!paused) {
          held.forEach(append);
          held = [];
          log.scrollTop = log.scrollHeight;
          say("Following live.");
        } else {
          say("Paused.");
        }
      });
    }
    if (clear) {
      clear.addEventListener("click", function () {
        while (log.firstChild) log.removeChild(log.firstChild);
        held = [];
        say(paused ? "Paused." : "Following live.");
      });
    }
    log.scrollTop = log.scrollHeight;
    connect(log.dataset.stream);
  }

  // followApps keeps the status column of the apps table current: every
  // few seconds it asks the API for the newest deployment of the apps on
  // the page (one request, the session cookie authenticates it).
  function followApps() {
    var table = document.getElementById("apps");
    if (!table || !window.fetch) return;
    var rows = {};
    var query = [];
    table.querySelectorAll("tbody tr[data-app-id]").forEach(function (tr) {
      rows[tr.dataset.appId] = tr;
      query.push("app=" + encodeURIComponent(tr.dataset.app));
    });
    if (!query.length) return;
    var url = "/api/v1/deployments?" + query.join("&");
    function update(list) {
      (list || []).forEach(function (d) {
        var tr = rows[d.app_id];
        if (!tr || !d.status) return;
        var st = tr.querySelector(".status");
        if (st && st.textContent !== d.status) {
          st.textContent = d.status;
          st.className = "status s-" + d.status;
        }
        var last = tr.querySelector("td.last");
        if (last && String(d.number) !== last.dataset.number) {
          last.dataset.number = String(d.number);
          while (last.firstChild) last.removeChild(last.firstChild);
          var a = document.createElement("a");
          a.href = "/apps/" + encodeURIComponent(tr.dataset.app) + "/deployments/" + d.number;
          a.textContent = "#" + d.number;
          last.appendChild(a);
          last.appendChild(document.createTextNode(" " + utc(d.created_at)));
        }
      });
    }
    function poll() {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(update)
        .catch(function () { /* the next tick tries again */ });
    }
    setInterval(poll, 5000);
  }
  document.addEventListener("DOMContentLoaded", followApps);
})();
