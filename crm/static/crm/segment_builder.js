/* Visual AND/OR segment rule builder (no framework, no build step).
 *
 * The source of truth on the wire stays the `rules` textarea: the builder keeps a JSON tree in the exact
 * shape crm/segments.py validates ({op, rules:[...]} groups, {field, operator, value} conditions), writes
 * it into the textarea on every change and fires `change`, which HTMX turns into a live count. Fields,
 * operators, their labels and value shapes all come from the server (json_script "segment-catalog").
 * Without JS the builder stays hidden and the textarea is edited directly.
 */
(function () {
  "use strict";

  var textarea = document.getElementById("rules");
  var root = document.getElementById("rule-builder");
  var catalogEl = document.getElementById("segment-catalog");
  if (!textarea || !root || !catalogEl) return;

  var catalog = JSON.parse(catalogEl.textContent);
  var FIELDS = catalog.fields || {};
  var OPS = catalog.operators || {};
  var TAGS = catalog.tags || [];
  var modeBtn = document.getElementById("rules-mode");
  var jsonBox = document.getElementById("rules-json");
  var modeError = document.getElementById("rules-mode-error");
  var tree = null;
  var index = {}; // path -> element, rebuilt on every render
  var uid = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "on") Object.keys(value).forEach(function (ev) { node.addEventListener(ev, value[ev]); });
      else if (key in node && key !== "list" && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function isGroup(node) {
    return !!node && typeof node === "object" && !Array.isArray(node) && ("rules" in node || "op" in node);
  }

  /* Returns a message when the tree cannot be shown in the builder (the JSON editor still can). */
  function unsupported(node, path) {
    var where = path || "rules";
    if (!node || typeof node !== "object" || Array.isArray(node)) return where + " is not a group or a condition.";
    if (isGroup(node)) {
      if (!Array.isArray(node.rules)) return where + ".rules is not a list.";
      var op = String(node.op === undefined ? "and" : node.op).toLowerCase();
      if (op !== "and" && op !== "or") return where + '.op must be "and" or "or".';
      for (var i = 0; i < node.rules.length; i++) {
        var problem = unsupported(node.rules[i], (path ? path + "." : "") + "rules[" + i + "]");
        if (problem) return problem;
      }
      return null;
    }
    if (typeof node.field !== "string") return where + ".field is missing.";
    return null;
  }

  function normalize(node) {
    if (isGroup(node)) {
      node.op = String(node.op === undefined ? "and" : node.op).toLowerCase();
      node.rules.forEach(normalize);
    }
    return node;
  }

  function operatorsFor(field) {
    var spec = FIELDS[field];
    if (!spec) return [];
    return Object.keys(OPS).filter(function (op) { return spec.operators.indexOf(op) !== -1; });
  }

  function shapeOf(op) {
    return OPS[op] ? OPS[op].input : "text";
  }

  function defaultOperator(field) {
    var ops = operatorsFor(field);
    return ops.indexOf("eq") !== -1 ? "eq" : ops[0];
  }

  function defaultValue(field, op) {
    var spec = FIELDS[field] || { kind: "text", choices: [] };
    switch (shapeOf(op)) {
      case "none": return undefined;
      case "list": return [];
      case "range": return ["", ""];
      case "days": return 30;
      case "channel": return spec.choices[0] || "any";
      case "tags": return "";
      default:
        if (spec.kind === "choice") return spec.choices[0] || "";
        if (spec.kind === "bool") return true;
        return "";
    }
  }

  function newCondition() {
    var field = Object.keys(FIELDS)[0];
    var op = defaultOperator(field);
    var cond = { field: field, operator: op };
    var value = defaultValue(field, op);
    if (value !== undefined) cond.value = value;
    return cond;
  }

  /* A typed string -> the JSON value the server expects for this field kind (bad input is passed through
   * as text so the server's field-level error explains it). */
  function toValue(kind, raw) {
    if (kind === "number") {
      var trimmed = String(raw).trim();
      return trimmed !== "" && isFinite(Number(trimmed)) ? Number(trimmed) : raw;
    }
    if (kind === "bool") return raw === "true" ? true : raw === "false" ? false : raw;
    return raw;
  }

  function splitList(raw) {
    return String(raw).split(",").map(function (s) { return s.trim(); }).filter(function (s) { return s !== ""; });
  }

  function display(value) {
    return value === undefined || value === null ? "" : String(value);
  }

  function sync() {
    textarea.value = JSON.stringify(tree, null, 2);
    textarea.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function changed(structural) {
    if (structural) render();
    sync();
  }

  /* One input for a single value of the field's kind. */
  function scalarInput(spec, value, label, onValue) {
    if (spec.kind === "choice" || spec.kind === "bool") {
      var options = spec.kind === "bool" ? ["true", "false"] : spec.choices.slice();
      if (options.indexOf(display(value)) === -1) options.unshift(display(value));
      return el("select", { "aria-label": label, on: { change: function (e) { onValue(toValue(spec.kind, e.target.value)); } } },
        options.map(function (c) {
          return el("option", { value: c, selected: c === display(value), text: c === "" ? "(blank)" : c });
        }));
    }
    var type = spec.kind === "number" ? "number" : spec.kind === "date" ? "date" : "text";
    return el("input", {
      type: type, step: type === "number" ? "any" : null, value: display(value), "aria-label": label,
      on: { input: function (e) { onValue(toValue(spec.kind, e.target.value)); } },
    });
  }

  function valueEditor(cond) {
    var spec = FIELDS[cond.field] || { kind: "text", choices: [] };
    var box = el("span", { class: "rb-value" });
    var set = function (v) { cond.value = v; changed(false); };
    switch (shapeOf(cond.operator)) {
      case "none":
        break;
      case "range": {
        var pair = Array.isArray(cond.value) && cond.value.length === 2 ? cond.value : ["", ""];
        cond.value = pair;
        box.appendChild(scalarInput(spec, pair[0], "From", function (v) { pair[0] = v; changed(false); }));
        box.appendChild(el("span", { class: "muted", text: "and" }));
        box.appendChild(scalarInput(spec, pair[1], "To", function (v) { pair[1] = v; changed(false); }));
        break;
      }
      case "list": {
        var items = Array.isArray(cond.value) ? cond.value : [];
        cond.value = items;
        if (spec.choices.length) {
          var multi = el("span", { class: "rb-multi", role: "group", "aria-label": "Values" });
          spec.choices.forEach(function (choice) {
            var box_ = el("input", {
              type: "checkbox", value: choice, checked: items.indexOf(choice) !== -1,
              on: {
                change: function (e) {
                  var at = items.indexOf(choice);
                  if (e.target.checked && at === -1) items.push(choice);
                  if (!e.target.checked && at !== -1) items.splice(at, 1);
                  changed(false);
                },
              },
            });
            multi.appendChild(el("label", {}, [box_, choice === "" ? "(blank)" : choice]));
          });
          box.appendChild(multi);
        } else {
          box.appendChild(el("input", {
            type: "text", value: items.join(", "), placeholder: "a, b, c", "aria-label": "Values (comma separated)",
            on: { input: function (e) { set(splitList(e.target.value).map(function (s) { return toValue(spec.kind, s); })); } },
          }));
        }
        break;
      }
      case "days":
        box.appendChild(el("input", {
          type: "number", min: "0", step: "1", value: display(cond.value), "aria-label": "Days", class: "rb-days",
          on: { input: function (e) { set(/^\d+$/.test(e.target.value) ? parseInt(e.target.value, 10) : e.target.value); } },
        }));
        box.appendChild(el("span", { class: "muted", text: "days" }));
        break;
      case "tags":
        box.appendChild(el("input", {
          type: "text", list: "rb-tag-names", placeholder: "tag (or tag1, tag2)", "aria-label": "Tag",
          value: Array.isArray(cond.value) ? cond.value.join(", ") : display(cond.value),
          on: {
            input: function (e) {
              var names = splitList(e.target.value);
              set(names.length > 1 ? names : names[0] || "");
            },
          },
        }));
        break;
      case "channel":
        box.appendChild(scalarInput({ kind: "choice", choices: spec.choices }, cond.value || "any", "Channel", set));
        break;
      default:
        box.appendChild(scalarInput(spec, cond.value, "Value", set));
    }
    return box;
  }

  function renderCondition(cond, path, parent) {
    var row = el("div", { class: "rb-cond", "data-path": path });
    var fieldNames = Object.keys(FIELDS);
    if (fieldNames.indexOf(cond.field) === -1) fieldNames = [cond.field].concat(fieldNames);
    var fieldSelect = el("select", {
      "aria-label": "Field",
      on: {
        change: function (e) {
          cond.field = e.target.value;
          var ops = operatorsFor(cond.field);
          if (ops.indexOf(cond.operator) === -1) cond.operator = defaultOperator(cond.field);
          var value = defaultValue(cond.field, cond.operator);
          if (value === undefined) delete cond.value; else cond.value = value;
          changed(true);
        },
      },
    }, fieldNames.map(function (name) {
      var label = FIELDS[name] ? FIELDS[name].label || name.replace(/_/g, " ") : name + " (unknown)";
      return el("option", { value: name, selected: name === cond.field, text: label });
    }));
    var ops = operatorsFor(cond.field);
    if (ops.indexOf(cond.operator) === -1) ops = [cond.operator].concat(ops);
    var opSelect = el("select", {
      "aria-label": "Operator",
      on: {
        change: function (e) {
          var before = shapeOf(cond.operator);
          cond.operator = e.target.value;
          if (shapeOf(cond.operator) !== before) {
            var value = defaultValue(cond.field, cond.operator);
            if (value === undefined) delete cond.value; else cond.value = value;
          }
          changed(true);
        },
      },
    }, ops.map(function (op) {
      return el("option", { value: op, selected: op === cond.operator, text: OPS[op] ? OPS[op].label : String(op) });
    }));
    var remove = el("button", {
      type: "button", class: "btn btn-small rb-remove", "aria-label": "Remove condition", title: "Remove condition", text: "×",
      on: { click: function () { parent.rules.splice(parent.rules.indexOf(cond), 1); changed(true); } },
    });
    row.appendChild(el("div", { class: "rb-cond-inputs" }, [fieldSelect, opSelect, valueEditor(cond), remove]));
    row.appendChild(el("p", { class: "rb-error form-error", hidden: true }));
    index[path] = row;
    return row;
  }

  /* After an add button: focus the Field of the condition just added (its path inside `group`). */
  function focusNew(group, path, inner) {
    focusAfterRender = { path: (path ? path + "." : "") + "rules[" + (group.rules.length - 1) + "]" + inner, label: "Field", value: null };
  }

  function renderGroup(group, path, parent, depth) {
    var box = el("div", { class: "rb-group" + (depth % 2 ? " rb-group-alt" : ""), "data-path": path, role: "group" });
    var name = "rb-op-" + (uid++);
    var toggle = el("span", { class: "rb-toggle", role: "radiogroup", "aria-label": "Combine conditions with" },
      ["and", "or"].map(function (op) {
        return el("label", { class: group.op === op ? "active" : null }, [
          el("input", {
            type: "radio", name: name, value: op, checked: group.op === op, class: "sr-only",
            on: { change: function () { group.op = op; changed(true); } },
          }),
          op.toUpperCase(),
        ]);
      }));
    var hint = el("span", { class: "muted", text: group.op === "or" ? "any of these match" : "all of these match" });
    var head = el("div", { class: "rb-group-head" }, [toggle, hint]);
    if (parent) {
      head.appendChild(el("button", {
        type: "button", class: "btn btn-small rb-remove", text: "Remove group",
        on: { click: function () { parent.rules.splice(parent.rules.indexOf(group), 1); changed(true); } },
      }));
    }
    box.appendChild(head);
    box.appendChild(el("p", { class: "rb-error form-error", hidden: true }));
    var children = el("div", { class: "rb-children" });
    group.rules.forEach(function (child, i) {
      var childPath = (path ? path + "." : "") + "rules[" + i + "]";
      children.appendChild(isGroup(child) ? renderGroup(child, childPath, group, depth + 1) : renderCondition(child, childPath, group));
    });
    if (!group.rules.length) children.appendChild(el("p", { class: "muted", text: "Empty group: add a condition." }));
    box.appendChild(children);
    box.appendChild(el("div", { class: "rb-group-foot" }, [
      el("button", {
        type: "button", class: "btn btn-small", text: "+ Condition",
        on: { click: function () { group.rules.push(newCondition()); focusNew(group, path, ""); changed(true); } },
      }),
      el("button", {
        type: "button", class: "btn btn-small", text: "+ Group",
        on: {
          click: function () {
            group.rules.push({ op: "and", rules: [newCondition()] });
            focusNew(group, path, ".rules[0]");
            changed(true);
          },
        },
      }),
    ]));
    index[path] = box;
    return box;
  }

  /* A render replaces every control. Keyboard focus stays on the same control (same row, same label or
   * radio value), moves to the control an add button asked for (the new condition's Field), or, when its
   * row was removed, to the enclosing group's "+ Condition" button: never back to the top of the page. */
  var focusAfterRender = null;

  function controlKey(node) {
    var row = node.closest("[data-path]");
    return {
      path: row ? row.getAttribute("data-path") : "",
      label: node.getAttribute("aria-label") || node.textContent.trim(),
      value: node.type === "radio" ? node.value : null,
    };
  }

  function findControl(key) {
    var path = key.path;
    while (!(path in index) && path) path = path.indexOf(".") === -1 ? "" : path.slice(0, path.lastIndexOf("."));
    var row = index[path];
    if (!row) return null;
    var wanted = path === key.path ? key : { label: "+ Condition", value: null };
    var controls = row.querySelectorAll("select, input, button, textarea");
    for (var i = 0; i < controls.length; i++) {
      var k = controlKey(controls[i]);
      if (k.path === path && k.label === wanted.label && k.value === wanted.value) return controls[i];
    }
    return null;
  }

  function render() {
    var active = document.activeElement;
    var key = focusAfterRender || (active && root.contains(active) ? controlKey(active) : null);
    focusAfterRender = null;
    index = {};
    root.replaceChildren(renderGroup(tree, "", null, 0));
    if (TAGS.length) {
      root.appendChild(el("datalist", { id: "rb-tag-names" }, TAGS.map(function (t) { return el("option", { value: t }); })));
    }
    var target = key && findControl(key);
    if (target) target.focus();
  }

  /* Server errors are keyed by paths such as rules[1].rules[0].value (count view) or
   * rules.rules[1].rules[0].value (save): show each next to the deepest row or group it names. */
  function showErrors(errors) {
    Object.keys(index).forEach(function (path) {
      var node = index[path];
      node.classList.remove("rb-invalid");
      node.querySelectorAll("[aria-invalid]").forEach(function (c) { c.removeAttribute("aria-invalid"); });
      var slot = node.querySelector(":scope > .rb-error");
      if (slot) { slot.hidden = true; slot.textContent = ""; }
    });
    Object.keys(errors).forEach(function (key) {
      var full = key.indexOf("rules.") === 0 ? key.slice(6) : key;
      var path = full;
      while (path && !(path in index)) path = path.indexOf(".") === -1 ? "" : path.slice(0, path.lastIndexOf("."));
      var node = index[path];
      if (!node) return;
      var slot = node.querySelector(":scope > .rb-error");
      var part = full.slice(path.length).replace(/^\./, "");
      var control = {
        field: "select[aria-label=Field]",
        operator: "select[aria-label=Operator]",
        value: ".rb-value input:not([type=checkbox]), .rb-value select, .rb-value .rb-multi",
      }[part];
      if (control && node.classList.contains("rb-cond")) {
        node.querySelector(":scope > .rb-cond-inputs").querySelectorAll(control)
          .forEach(function (c) { c.setAttribute("aria-invalid", "true"); });
      }
      node.classList.add("rb-invalid");
      slot.hidden = false;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + errors[key];
    });
  }

  function readErrors(container) {
    var errors = {};
    container.querySelectorAll("[data-path]").forEach(function (li) {
      errors[li.getAttribute("data-path")] = li.textContent.replace(/^[^:]*:\s*/, "");
    });
    return errors;
  }

  function useBuilder() {
    var parsed;
    try {
      parsed = JSON.parse(textarea.value);
    } catch (exc) {
      return "The JSON does not parse (" + exc.message + "); fix it here first.";
    }
    var problem = unsupported(parsed, "");
    if (!problem && !isGroup(parsed)) problem = "The top level must be a group ({\"op\": ..., \"rules\": [...]}).";
    if (problem) return "The visual builder cannot show these rules: " + problem;
    tree = normalize(parsed);
    render();
    root.hidden = false;
    jsonBox.hidden = true;
    modeBtn.textContent = "Edit as JSON";
    modeBtn.setAttribute("aria-expanded", "false");
    modeError.hidden = true;
    return null;
  }

  function useJson(message) {
    root.hidden = true;
    jsonBox.hidden = false;
    modeBtn.textContent = "Visual builder";
    modeBtn.setAttribute("aria-expanded", "true");
    modeError.textContent = message || "";
    modeError.hidden = !message;
  }

  modeBtn.hidden = false;
  modeBtn.addEventListener("click", function () {
    if (root.hidden) {
      var problem = useBuilder();
      if (problem) useJson(problem);
    } else {
      useJson("");
      textarea.focus();
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "segment-count" && !root.hidden) {
      showErrors(readErrors(evt.detail.target));
    }
  });

  var problem = useBuilder();
  if (problem) useJson(problem);
})();
