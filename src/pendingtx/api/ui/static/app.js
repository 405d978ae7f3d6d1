// The dashboard's script: times in the viewer's zone, and live job updates from the event stream
// (/ui/events). The pages work without it: times then read in US Eastern, progress on reload.
(function () {
  "use strict";

  var TERMINAL = ["Completed", "Partially Completed", "Failed", "Cancelled"];
  var TYPES = ["job.submitted", "job.started", "job.progress", "job.completed"];
  var formatter = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        element.textContent = formatter.format(moment);
      }
    });
  }

  function rank(status) {
    return TERMINAL.indexOf(status) >= 0 ? 2 : status === "In Progress" ? 1 : 0;
  }

  function slug(text) {
    return text.trim().toLowerCase().replace(/ /g, "-");
  }

  function fields(root, name) {
    return root.querySelectorAll('[data-field="' + name + '"]');
  }

  function setText(root, name, text) {
    fields(root, name).forEach(function (element) {
      element.textContent = text;
    });
  }

  function showCompleted(root, event) {
    fields(root, "completed").forEach(function (cell) {
      var time = document.createElement("time");
      time.setAttribute("datetime", event.createdAt);
      time.title = event.createdAt;
      time.textContent = event.createdAt;
      cell.replaceChildren(time);
      localTimes(cell);
    });
  }

  // Events only move a job forward: one older than what the page shows changes nothing.
  function apply(root, event) {
    var data = event.data;
    var badge = root.querySelector('[data-field="status"]');
    if (root.dataset.terminal === "true" || (badge && rank(data.status) < rank(badge.textContent))) {
      return;
    }
    var processed = data.processedCount;
    fields(root, "bar").forEach(function (bar) {
      bar.max = Math.max(data.recordCount, 1);
      processed = Math.max(processed, Number(bar.value));
      bar.value = processed;
      bar.textContent = processed + " of " + data.recordCount;
    });
    setText(root, "processed", String(processed));
    setText(root, "records", String(data.recordCount));
    setText(root, "failed", String(data.failedCount));
    if (badge) {
      badge.textContent = data.status;
      badge.className = "status status-" + slug(data.status);
    }
    if (TERMINAL.indexOf(data.status) >= 0) {
      root.dataset.terminal = "true";
      setText(root, "message", data.status);
      showCompleted(root, event);
      fields(root, "done").forEach(function (notice) {
        notice.hidden = false;
      });
    } else if (data.status === "In Progress") {
      setText(root, "message", "In Progress: " + processed + " of " + data.recordCount + " records processed");
    }
  }

  // A job submitted after the page was read: its row, rendered by the server, on top of the list.
  function addRow(live, key, pending) {
    var rows = live.querySelector("[data-rows]");
    fetch("/ui/jobs/" + encodeURIComponent(key) + "/row", { credentials: "same-origin" })
      .then(function (answer) {
        return answer.ok ? answer.text() : "";
      })
      .then(function (html) {
        if (!html || rows.querySelector('[data-job="' + CSS.escape(key) + '"]')) {
          return;
        }
        var empty = rows.querySelector("tr.empty");
        if (empty) {
          empty.remove();
        }
        var holder = document.createElement("tbody");
        holder.innerHTML = html;
        var row = holder.querySelector("tr");
        rows.prepend(row);
        document.querySelectorAll('[data-field="total"]').forEach(function (total) {
          total.textContent = String(Number(total.textContent) + 1);
        });
        localTimes(row);
        pending.get(key).forEach(function (event) {
          apply(row, event);
        });
        pending.delete(key);
      });
  }

  function follow(live) {
    var url = new URL("/ui/events", window.location.origin);
    url.searchParams.set("after", live.dataset.after);
    if (live.dataset.key) {
      url.searchParams.set("key", live.dataset.key);
    }
    var source = new EventSource(url);
    var pending = new Map();
    function received(message) {
      var event = JSON.parse(message.data);
      var key = event.data.jobStatusQueryKey;
      var found = live.matches('[data-job="' + CSS.escape(key) + '"]')
        ? [live]
        : live.querySelectorAll('[data-job="' + CSS.escape(key) + '"]');
      found.forEach(function (root) {
        apply(root, event);
      });
      if (found.length === 0 && live.dataset.insert === "true") {
        if (pending.has(key)) {
          pending.get(key).push(event);
        } else {
          pending.set(key, [event]);
          addRow(live, key, pending);
        }
      }
      // A job's own stream ends with its completion: nothing more to wait for.
      if (live.dataset.key && event.type === "job.completed") {
        source.close();
      }
    }
    TYPES.forEach(function (type) {
      source.addEventListener(type, received);
    });
  }

  localTimes(document);
  var live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    follow(live);
  }
})();
