// berth dashboard: the theme button and the live deployment log. Every
// page works without this file; it never uses innerHTML.
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
  });

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
    // The stream starts from the first line; the page already shows the
    // first data-lines of them.
    var skip = parseInt(log.dataset.lines || "0", 10);
    var es = new EventSource(log.dataset.stream);
    function setStatus(d) {
      if (!status || !d || !d.status) return;
      status.textContent = d.status;
      status.className = "status s-" + d.status;
    }
    es.addEventListener("log", function (ev) {
      if (skip > 0) { skip--; return; }
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
})();
