// Small DOM helpers: element building (text only, never HTML strings), dialogs with a
// focus trap, row menus, toasts, copy buttons and formatting.

let uid = 0;
export function nextId(prefix = "c") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// h("button", {class: "x", onclick: fn}, "text", child) -> element. Strings become text nodes.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "style") {
      el.style.cssText = value; // CSSOM, which the page's CSP allows (style attributes it does not)
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value") {
      el.value = value;
    } else if (name === "checked" || name === "disabled" || name === "readOnly" || name === "hidden") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A table cell whose text never breaks the layout: ellipsis, full text in the title.
export function cellText(text, extraClass = "") {
  const value = text === null || text === undefined ? "" : String(text);
  return h("span", { class: `cell ${extraClass}`.trim(), title: value }, value);
}

// --- toasts ---------------------------------------------------------------------------
export function toast(message, kind = "info") {
  const host = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}` }, message);
  host.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 12000 : 8000);
}

// --- dialogs --------------------------------------------------------------------------
const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), ' +
  'textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
}

// openDialog({title, body, footer, wide, initialFocus, onClose}) -> {dialog, close, body, footer, setBusy}
// Native <dialog> opened modally makes the page behind it inert; Tab is additionally kept
// inside the dialog, Escape closes it, and focus returns to whatever opened it.
export function openDialog({ title, body = [], footer = [], wide = false, initialFocus = null, onClose = null, label = null }) {
  const opener = document.activeElement;
  const titleId = nextId("dlg-title");
  const bodyEl = h("div", { class: "modal-body" }, body);
  const footEl = h("div", { class: "modal-foot" }, footer);
  const closeBtn = h("button", { type: "button", class: "button icon subtle", "aria-label": "Close dialog" }, "✕");
  const dialog = h(
    "dialog",
    { class: `modal${wide ? " wide" : ""}`, "aria-labelledby": titleId, "aria-label": label },
    h("div", { class: "modal-head" }, h("h2", { id: titleId }, title), closeBtn),
    bodyEl,
    footEl,
  );
  let closed = false;
  function close(result) {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (opener && typeof opener.focus === "function" && document.contains(opener)) opener.focus();
    if (onClose) onClose(result);
  }
  closeBtn.addEventListener("click", () => close());
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
      return;
    }
    if (event.key !== "Tab") return;
    const items = focusables(dialog);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  const target = (typeof initialFocus === "function" ? initialFocus() : initialFocus) || focusables(bodyEl)[0] || closeBtn;
  target.focus();
  return { dialog, close, body: bodyEl, footer: footEl };
}

// A confirmation dialog; when `typed` is given, the confirm button stays disabled until
// the user types that exact text. `action` runs on confirm and may throw an error, which
// is shown inside the dialog (the dialog stays open).
export function confirmDialog({ title, message, confirmLabel, danger = true, typed = null, typedLabel = "", action }) {
  const errorBox = h("div", { class: "alert", role: "alert", hidden: true });
  const confirm = h("button", { type: "submit", class: `button ${danger ? "danger" : "primary"}` }, confirmLabel);
  let input = null;
  const parts = [errorBox, ...(Array.isArray(message) ? message : [h("p", {}, message)])];
  if (typed !== null) {
    const id = nextId("confirm");
    input = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", class: "mono" });
    parts.push(h("div", { class: "field" }, h("label", { for: id }, typedLabel), input));
    confirm.disabled = true;
    input.addEventListener("input", () => {
      confirm.disabled = input.value.trim() !== typed;
    });
  }
  const cancel = h("button", { type: "button", class: "button" }, "Cancel");
  const form = h("form", { novalidate: true }, parts);
  const dlg = openDialog({
    title,
    body: [form],
    footer: [cancel, confirm],
    initialFocus: input || cancel,
  });
  cancel.addEventListener("click", () => dlg.close());
  async function submit(event) {
    event.preventDefault();
    if (confirm.disabled) return;
    confirm.disabled = true;
    errorBox.hidden = true;
    try {
      await action();
      dlg.close(true);
    } catch (err) {
      errorBox.textContent = err.message || String(err);
      errorBox.hidden = false;
      confirm.disabled = typed !== null && input.value.trim() !== typed;
    }
  }
  form.addEventListener("submit", submit);
  confirm.addEventListener("click", submit);
  return dlg;
}

// --- row menus ------------------------------------------------------------------------
// menuButton(label, items): items are {label, onSelect, danger?, disabled?}.
// Arrow keys move between items, Escape closes and returns focus to the button.
export function menuButton(label, items) {
  const menuId = nextId("menu");
  const button = h(
    "button",
    { type: "button", class: "button icon small", "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": menuId, "aria-label": label, title: label },
    "⋯",
  );
  const list = h("ul", { class: "menu", role: "menu", id: menuId, hidden: true, "aria-label": label });
  const entries = items.map((item) => {
    const btn = h(
      "button",
      { type: "button", role: "menuitem", tabindex: "-1", class: item.danger ? "danger" : "", disabled: item.disabled },
      item.label,
    );
    btn.addEventListener("click", () => {
      close(false);
      item.onSelect();
    });
    list.append(h("li", { role: "none" }, btn));
    return btn;
  });
  const wrap = h("div", { class: "menu-wrap" }, button, list);
  function enabled() {
    return entries.filter((b) => !b.disabled);
  }
  function open() {
    list.hidden = false;
    button.setAttribute("aria-expanded", "true");
    (enabled()[0] || button).focus();
    document.addEventListener("pointerdown", outside, true);
  }
  function close(refocus = true) {
    list.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", outside, true);
    if (refocus) button.focus();
  }
  function outside(event) {
    if (!wrap.contains(event.target)) close(false);
  }
  button.addEventListener("click", () => (list.hidden ? open() : close()));
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && list.hidden) {
      event.preventDefault();
      open();
    }
  });
  list.addEventListener("keydown", (event) => {
    const live = enabled();
    const at = live.indexOf(document.activeElement);
    if (event.key === "Escape" || event.key === "Tab") {
      event.preventDefault();
      close();
    } else if (event.key === "ArrowDown") {
      event.preventDefault();
      live[(at + 1) % live.length].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      live[(at - 1 + live.length) % live.length].focus();
    } else if (event.key === "Home") {
      event.preventDefault();
      live[0].focus();
    } else if (event.key === "End") {
      event.preventDefault();
      live[live.length - 1].focus();
    }
  });
  return wrap;
}

// --- copy -----------------------------------------------------------------------------
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission: fall back to selecting the text for the user to copy.
    return false;
  }
}

// target: an input or textarea (copies its value), or the text itself.
export function copyButton(target, what) {
  const btn = h("button", { type: "button", class: "button small", "aria-label": `Copy ${what}` }, "Copy");
  btn.addEventListener("click", async () => {
    const text = typeof target === "string" ? target : target.value;
    const ok = await copyText(text);
    if (ok) {
      btn.textContent = "Copied";
      toast(`${what} copied to the clipboard`);
      setTimeout(() => (btn.textContent = "Copy"), 2000);
    } else if (typeof target === "string") {
      toast(`Copy the ${what.toLowerCase()}: ${text}`);
    } else {
      target.focus();
      target.select();
      toast(`Press Ctrl+C to copy the ${what.toLowerCase()}`);
    }
  });
  return btn;
}

// --- states and formatting ---------------------------------------------------------------
export function emptyState(title, text) {
  return h("div", { class: "empty" }, h("strong", {}, title), text ? h("span", {}, text) : null);
}

export function errorState(title, err) {
  return h("div", { class: "error-state", role: "alert" }, h("strong", {}, title), err.message || String(err));
}

export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = n;
  let i = -1;
  do {
    value /= 1024;
    i += 1;
  } while (value >= 1024 && i < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDate(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function field({ label, input, hint = null, error = null }) {
  const id = input.id || nextId("f");
  input.id = id;
  const hintEl = hint ? h("div", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("div", { class: "field-error", id: `${id}-error`, role: "alert", hidden: !error }, error || "");
  const described = [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, errorEl);
  const setError = errorSetter(input, errorEl);
  return {
    wrap,
    setError,
    // The input's trimmed value, its error cleared; when it is empty, "" and the field says
    // `message` and takes the focus.
    required(message) {
      setError("");
      const value = input.value.trim();
      if (!value) {
        setError(message);
        input.focus();
      }
      return value;
    },
  };
}

// The setError of a field: shows `message` under `input` (and marks it invalid), or clears it.
export function errorSetter(input, errorEl) {
  return (message) => {
    errorEl.textContent = message || "";
    errorEl.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  };
}

// dataTable({label, columns, rows}): columns are {title, width, class} (a width such as "20%");
// a column with `actions: true` is the narrow row-menu column, its title visually hidden.
export function dataTable({ label, columns, rows }) {
  return h(
    "table",
    { class: "data", "aria-label": label },
    h("colgroup", {}, columns.map((c) => h("col", { style: `width:${c.actions ? "64px" : c.width}` }))),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map((c) =>
          c.actions
            ? h("th", { scope: "col", class: "actions" }, h("span", { class: "visually-hidden" }, c.title || "Actions"))
            : h("th", { scope: "col", class: c.class }, c.title),
        ),
      ),
    ),
    h("tbody", {}, rows),
  );
}

// A dialog around a form of `body` with an alert box above it, Cancel (which closes it) and a
// primary submit button in its footer; pressing that button or Enter in the form calls onSubmit().
export function submitDialog({ onSubmit, title, body, submitLabel, initialFocus = null }) {
  const errorBox = h("div", { class: "alert", role: "alert", hidden: true });
  const form = h("form", { novalidate: true }, errorBox, body);
  const cancel = h("button", { type: "button", class: "button" }, "Cancel");
  const submit = h("button", { type: "submit", class: "button primary" }, submitLabel);
  const dlg = openDialog({ title, body: [form], footer: [cancel, submit], initialFocus });
  cancel.addEventListener("click", () => dlg.close());
  function handle(event) {
    event.preventDefault();
    return onSubmit();
  }
  form.addEventListener("submit", handle);
  submit.addEventListener("click", handle);
  return {
    dlg,
    submit,
    errorBox,
    showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
    },
  };
}

// A dialog around a form: Cancel and a submit button, an alert box for the server's
// message. `submit()` may throw: the error's message is shown in the alert, a field the
// server names (google.rpc.BadRequest) is marked through `fields` ({name: field()}), and
// the dialog stays open. `submit` gets the dialog, to show a result in it on success.
export function formDialog({ title, body, submitLabel, fields = {}, wide = false, initialFocus = null, submit }) {
  const errorBox = h("div", { class: "alert", role: "alert", hidden: true });
  const form = h("form", { novalidate: true, id: nextId("form") }, errorBox, body);
  const cancel = h("button", { type: "button", class: "button" }, "Cancel");
  // form= makes it the form's default button although it sits in the dialog's footer.
  const ok = h("button", { type: "submit", class: "button primary", form: form.id }, submitLabel);
  const dlg = openDialog({ title, body: [form], footer: [cancel, ok], wide, initialFocus });
  cancel.addEventListener("click", () => dlg.close());
  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest" });
  }
  async function onSubmit(event) {
    event.preventDefault();
    if (ok.disabled) return;
    errorBox.hidden = true;
    for (const f of Object.values(fields)) f.setError("");
    ok.disabled = true;
    try {
      await submit(dlg);
    } catch (err) {
      ok.disabled = false;
      for (const [name, description] of Object.entries(err.fields || {})) {
        if (fields[name]) fields[name].setError(description);
      }
      showError(err.message || String(err));
    }
  }
  form.addEventListener("submit", onSubmit);
  return { ...dlg, showError };
}

// A table row's last cell: its menu of actions.
export function actionsCell(label, items) {
  return h("td", { class: "actions" }, menuButton(label, items));
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { title }, title), h("div", { class: "page-actions" }, actions));
}

export function searchBox(label, onInput, value = "") {
  const id = nextId("search");
  const input = h("input", { id, type: "search", placeholder: label, "aria-label": label, value, autocomplete: "off" });
  input.addEventListener("input", () => onInput(input.value));
  return { wrap: h("div", { class: "search" }, input), input };
}

function byName(item, needle) {
  return !needle || item.name.toLowerCase().includes(needle);
}

// A searchable list page: header and intro, a toolbar (search, `extras`, the count), and the table area.
// The search calls draw(), which calls show(all, ...): the items `matches(item, needle)` keeps
// for the search's lower-cased text (by default, those whose name contains it) in a dataTable of
// `label` and `columns` with a row(item) each, or why there are none (`empty`, or `noMatch`: by
// default "No <many> match"); failed(message, err) says the list could not be fetched.
export function listPage(main, { title, action, intro, searchLabel, draw, extras = [], loading }) {
  const search = searchBox(searchLabel, () => draw());
  const count = h("span", { class: "count", "aria-live": "polite" });
  const body = h("div", { class: "table-wrap" }, h("p", { class: "loading empty" }, loading));
  main.append(
    pageHeader(title, action),
    h("p", { class: "page-intro" }, intro),
    h("div", { class: "toolbar" }, search.wrap, ...extras, h("span", { class: "spacer" }), count),
    body,
  );
  return {
    get query() {
      return search.input.value;
    },
    show(all, { nouns: [one, many], matches = byName, empty, noMatch, label, columns, row }) {
      const needle = search.input.value.trim().toLowerCase();
      const shown = all.filter((item) => matches(item, needle));
      count.textContent = `${shown.length} of ${all.length} ${all.length === 1 ? one : many}`;
      if (!all.length) clear(body, emptyState(...empty));
      else if (!shown.length) clear(body, emptyState(...(noMatch || [`No ${many} match`, `Nothing matches “${search.input.value}”.`])));
      else clear(body, dataTable({ label, columns, rows: shown.map(row) }));
    },
    failed(message, err) {
      count.textContent = "";
      clear(body, errorState(message, err));
    },
  };
}
