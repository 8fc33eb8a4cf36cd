// ltosyms diff page: sortable, filterable tables over the rows embedded in the page.
// No network, no library: each <table class="rows" data-source="ID"> is filled from the JSON
// in <script type="application/json" id="ID"> ({columns: [{key, label, type}], rows: [[...]],
// sort, dir, page}). The state of every table (sort column, direction, filter text, choices)
// lives in the URL fragment, "#changes.sort=delta&changes.q=put_page&dirs.depth=2", so a view
// can be linked to; on load the fragment is applied through the same controls a reader uses.
"use strict";
(function () {
  var tables = {};

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  function number(value, signed) {
    if (value === null || value === "" || value === undefined) return "";
    var text = Math.abs(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    if (value < 0) return "\u2212" + text;
    return (signed && value > 0 ? "+" : "") + text;
  }

  function cell(column, value) {
    if (column.type === "num" || column.type === "delta") {
      var css = column.type === "delta" ? (value > 0 ? " grow" : value < 0 ? " shrink" : "") : "";
      return '<td class="n' + css + '">' + number(value, column.type === "delta") + "</td>";
    }
    if (column.type === "code") {
      return "<td><code>" + escapeHtml(value === null ? "" : value) + "</code></td>";
    }
    return "<td>" + escapeHtml(value === null ? "" : value) + "</td>";
  }

  function compare(type, direction) {
    return function (a, b) {
      var x = a[0], y = b[0];
      var missingX = x === null || x === "", missingY = y === null || y === "";
      if (missingX || missingY) return missingX === missingY ? 0 : missingX ? 1 : -1;
      if (type === "num" || type === "delta") return direction * (x - y);
      x = String(x).toLowerCase();
      y = String(y).toLowerCase();
      return direction * (x < y ? -1 : x > y ? 1 : 0);
    };
  }

  function Table(element) {
    var spec = JSON.parse(document.getElementById(element.dataset.source).textContent);
    this.element = element;
    this.id = element.id;
    this.columns = spec.columns;
    this.rows = spec.rows;
    this.text = spec.rows.map(function (row) {
      return row.join("\u0001").toLowerCase();
    });
    this.sortKey = spec.sort || null;
    this.direction = spec.dir === "asc" ? 1 : -1;
    this.page = spec.page || 500;
    this.limit = this.page;
    this.query = "";
    this.choices = {};
    this.controls = document.querySelectorAll('[data-table="' + this.id + '"]');
    var choices = this.choices;
    this.controls.forEach(function (control) {
      if (control.dataset.choice && control.value !== "") choices[control.dataset.choice] = control.value;
    });
    this.count = document.getElementById(this.id + "-count");
    this.more = document.getElementById(this.id + "-more");
    this.build();
  }

  Table.prototype.index = function (key) {
    for (var i = 0; i < this.columns.length; i++) if (this.columns[i].key === key) return i;
    return -1;
  };

  Table.prototype.build = function () {
    var self = this;
    var head = "<thead><tr>";
    this.columns.forEach(function (column) {
      if (column.hidden) return;
      head += '<th data-key="' + column.key + '" tabindex="0" title="sort">' +
        escapeHtml(column.label) + "</th>";
    });
    this.element.innerHTML = head + "</tr></thead><tbody></tbody>";
    this.element.querySelectorAll("th").forEach(function (th) {
      th.addEventListener("click", function () { self.sortBy(th.dataset.key); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter") self.sortBy(th.dataset.key);
      });
    });
    this.controls.forEach(function (control) {
      control.addEventListener("input", function () {
        if (control.dataset.choice) self.choices[control.dataset.choice] = control.value;
        else self.query = control.value.toLowerCase();
        self.limit = self.page;
        self.render();
        save();
      });
    });
    if (this.more) {
      this.more.addEventListener("click", function () {
        self.limit = Infinity;
        self.render();
      });
    }
  };

  Table.prototype.sortBy = function (key) {
    if (this.sortKey === key) this.direction = -this.direction;
    else {
      this.sortKey = key;
      var type = this.columns[this.index(key)].type;
      this.direction = type === "num" || type === "delta" ? -1 : 1;
    }
    this.render();
    save();
  };

  Table.prototype.selected = function () {
    var rows = this.rows, text = this.text, query = this.query, chosen = [];
    var filters = [];
    for (var key in this.choices) {
      if (this.choices[key] !== "") filters.push([this.index(key), this.choices[key]]);
    }
    for (var i = 0; i < rows.length; i++) {
      if (query && text[i].indexOf(query) < 0) continue;
      var keep = true;
      for (var f = 0; f < filters.length; f++) {
        if (String(rows[i][filters[f][0]]) !== filters[f][1]) { keep = false; break; }
      }
      if (keep) chosen.push(i);
    }
    if (this.sortKey !== null) {
      var column = this.index(this.sortKey);
      var keyed = chosen.map(function (i) { return [rows[i][column], i]; });
      keyed.sort(compare(this.columns[column].type, this.direction));
      chosen = keyed.map(function (pair) { return pair[1]; });
    }
    return chosen;
  };

  Table.prototype.render = function () {
    var self = this, chosen = this.selected(), html = [];
    var shown = chosen.slice(0, this.limit);
    shown.forEach(function (i) {
      var row = self.rows[i], cells = "";
      self.columns.forEach(function (column, c) {
        if (!column.hidden) cells += cell(column, row[c]);
      });
      html.push("<tr>" + cells + "</tr>");
    });
    this.element.tBodies[0].innerHTML = html.join("");
    this.element.querySelectorAll("th").forEach(function (th) {
      th.className = th.dataset.key === self.sortKey ? (self.direction > 0 ? "asc" : "desc") : "";
    });
    if (this.count) {
      this.count.textContent = number(shown.length) + " of " + number(chosen.length) +
        " rows shown (" + number(this.rows.length) + " in all)";
    }
    if (this.more) this.more.hidden = shown.length >= chosen.length;
    this.element.dataset.shown = String(shown.length);
    this.element.dataset.matching = String(chosen.length);
  };

  // The fragment: "<table>.<field>=<value>" pairs; fields sort, dir, q and the choices.
  function save() {
    var parts = [];
    Object.keys(tables).forEach(function (id) {
      var t = tables[id];
      if (t.sortKey !== null) {
        parts.push(id + ".sort=" + encodeURIComponent(t.sortKey));
        parts.push(id + ".dir=" + (t.direction > 0 ? "asc" : "desc"));
      }
      if (t.query) parts.push(id + ".q=" + encodeURIComponent(t.query));
      Object.keys(t.choices).forEach(function (key) {
        if (t.choices[key] !== "") parts.push(id + "." + key + "=" + encodeURIComponent(t.choices[key]));
      });
    });
    try {
      history.replaceState(null, "", "#" + parts.join("&"));
    } catch (error) {
      // Some browsers refuse history changes on file: pages; the view still works.
    }
  }

  function restore() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var match = /^([\w-]+)\.(\w+)=(.*)$/.exec(part);
      if (!match) return;
      (wanted[match[1]] = wanted[match[1]] || {})[match[2]] = decodeURIComponent(match[3]);
    });
    Object.keys(wanted).forEach(function (id) {
      var t = tables[id], state = wanted[id];
      if (!t) return;
      t.controls.forEach(function (control) {
        var field = control.dataset.choice || "q";
        if (state[field] !== undefined) {
          control.value = state[field];
          control.dispatchEvent(new Event("input"));
        }
      });
      if (state.sort !== undefined && t.index(state.sort) >= 0) {
        var th = t.element.querySelector('th[data-key="' + state.sort + '"]');
        if (th) {
          th.click();
          if ((state.dir === "asc") !== (t.direction > 0)) th.click();
        }
      }
    });
  }

  document.querySelectorAll("table.rows").forEach(function (element) {
    var table = new Table(element);
    tables[table.id] = table;
    table.render();
  });
  restore();
  document.documentElement.dataset.ready = "1";
})();
