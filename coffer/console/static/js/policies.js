// Organization Access Policies: list and search, create and edit with a statement builder
// or as JSON, delete with confirmation. The page calls the control plane's own routes:
// GET/POST /v1/cwobject/access-policy and DELETE /v1/cwobject/access-policy/{name}.

import { api, session } from "./api.js";
import {
  actionsCell,
  cellText,
  clear,
  confirmDialog,
  errorSetter,
  errorState,
  field,
  h,
  listPage,
  nextId,
  pageHeader,
  toast,
} from "./ui.js";

const BASE = "/console/access-policies";
const VERSION = "v1alpha1";

export async function renderPolicies(ctx) {
  const { main, navigate } = ctx;
  let policies = [];
  const createBtn = h("a", { class: "button primary", href: `${BASE}/new`, "data-link": true }, "Create Policy");
  const page = listPage(main, {
    title: "Organization Access Policies",
    action: createBtn,
    intro:
      "Organization policies decide who may do what, for S3 and for the control plane. "
      + "A matching Deny always wins; without a matching Allow a request is refused.",
    searchLabel: "Search by name",
    draw,
    loading: "Loading policies…",
  });

  function summary(policy, key) {
    const values = new Set();
    for (const st of policy.statements || []) for (const v of st[key] || []) values.add(v);
    return [...values].join(", ");
  }

  function draw() {
    page.show(policies, {
      nouns: ["policy", "policies"],
      empty: ["No organization policies yet", "Without one, every S3 request is refused. Create a policy to grant access."],
      label: "Organization access policies",
      columns: [{ title: "Name", width: "24%" }, { title: "Statements", width: "12%" }, { title: "Principals", width: "30%" }, { title: "Actions", width: "30%" }, { title: "Menu", actions: true }],
      row: (policy) => {
        const statements = policy.statements || [];
        const denies = statements.filter((s) => s.effect === "Deny").length;
        const edit = `${BASE}/edit/${encodeURIComponent(policy.name)}`;
        return h(
          "tr",
          { dataset: { policy: policy.name } },
          h("td", {}, h("a", { href: edit, "data-link": true, class: "cell", title: policy.name }, policy.name)),
          h("td", {}, cellText(`${statements.length}${denies ? ` (${denies} Deny)` : ""}`)),
          h("td", {}, cellText(summary(policy, "principals"), "mono")),
          h("td", {}, cellText(summary(policy, "actions"), "mono")),
          actionsCell(`Actions for policy ${policy.name}`, [
            { label: "Edit", onSelect: () => navigate(edit) },
            { label: "Delete…", danger: true, onSelect: () => deletePolicy(policy.name, reload) },
          ]),
        );
      },
    });
  }

  async function reload() {
    try {
      const data = await api("GET", "/v1/cwobject/access-policy");
      policies = (data.policies || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      draw();
    } catch (err) {
      page.failed("The organization policies could not be listed.", err);
    }
  }
  await reload();
}

function deletePolicy(name, onDone) {
  confirmDialog({
    title: "Delete policy",
    message: [h("p", {}, "Delete the policy ", h("code", {}, name), "? Access it grants ends immediately; access it denies is no longer denied.")],
    confirmLabel: "Delete",
    action: async () => {
      await api("DELETE", `/v1/cwobject/access-policy/${encodeURIComponent(name)}`);
      toast(`Policy ${name} deleted`);
      onDone();
    },
  });
}

// --- editor ---------------------------------------------------------------------------------

function blankStatement() {
  return { name: "", effect: "Allow", principals: [], actions: [], resources: [] };
}

// A list of short strings edited as removable chips; Enter or comma adds what is typed.
function chipList({ label, values, suggestions = null, placeholder = "" }) {
  const id = nextId("chips");
  const listId = suggestions ? nextId("suggest") : null;
  const chips = h("ul", { class: "chips", "aria-label": `${label} added` });
  const input = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", class: "mono", placeholder, list: listId });
  const addBtn = h("button", { type: "button", class: "button small" }, "Add");
  function draw() {
    clear(
      chips,
      values.map((value, i) =>
        h(
          "li",
          { class: "chip" },
          h("span", { title: value }, value),
          h(
            "button",
            {
              type: "button",
              "aria-label": `Remove ${value} from ${label}`,
              onclick: () => {
                values.splice(i, 1);
                draw();
                input.focus();
              },
            },
            "×",
          ),
        ),
      ),
    );
  }
  function commit() {
    const added = input.value.split(",").map((v) => v.trim()).filter(Boolean);
    for (const v of added) if (!values.includes(v)) values.push(v);
    input.value = "";
    draw();
    return added.length > 0;
  }
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault();
      commit();
    } else if (event.key === "Backspace" && !input.value && values.length) {
      values.pop();
      draw();
    }
  });
  input.addEventListener("blur", () => commit());
  addBtn.addEventListener("click", () => {
    commit();
    input.focus();
  });
  draw();
  const datalist = suggestions ? h("datalist", { id: listId }, suggestions.map((s) => h("option", { value: s }))) : null;
  const errorEl = h("div", { class: "field-error", id: `${id}-error`, hidden: true });
  input.setAttribute("aria-describedby", errorEl.id);
  return {
    wrap: h("div", { class: "field" }, h("label", { for: id }, label), chips, h("div", { class: "row" }, input, addBtn), errorEl, datalist),
    commit,
    setError: errorSetter(input, errorEl),
  };
}

export async function renderPolicyEditor(ctx, name) {
  const { main, navigate } = ctx;
  const editing = name !== null;
  let policy = { version: VERSION, name: "", statements: [blankStatement()] };
  if (editing) {
    main.append(h("p", { class: "loading" }, "Loading policy…"));
    try {
      const data = await api("GET", "/v1/cwobject/access-policy");
      const found = (data.policies || []).find((p) => p.name === name);
      if (!found) throw new Error(`There is no policy named “${name}”.`);
      policy = JSON.parse(JSON.stringify(found));
    } catch (err) {
      clear(main, pageHeader("Edit policy"), errorState("The policy could not be loaded.", err));
      return;
    }
    clear(main);
  }
  const title = editing ? `Edit policy ${name}` : "Create Policy";
  const errorBox = h("div", { class: "alert", role: "alert", hidden: true });
  const nameInput = h("input", { type: "text", autocomplete: "off", spellcheck: "false", value: policy.name, disabled: editing });
  const nameField = field({
    label: "Policy Name",
    input: nameInput,
    hint: editing ? "A policy is identified by its name, which cannot change." : "Letters, digits, '.', '_' and '-', starting with a letter or digit.",
  });
  const statementsBox = h("div");
  const addStatement = h("button", { type: "button", class: "button" }, "+ Add Statement");
  const builder = h("div", { id: nextId("builder") }, nameField.wrap, statementsBox, addStatement);
  const jsonArea = h("textarea", { class: "json-view", spellcheck: "false", rows: "22", id: nextId("json") });
  const jsonView = h("div", { hidden: true }, h("label", { for: jsonArea.id, class: "label" }, "Policy JSON"), jsonArea, h("p", { class: "hint" }, "The policy exactly as the API receives it (EnsureAccessPolicy)."));
  let commits = [];
  let fieldErrors = []; // per statement: {name, principals, actions, resources} -> setError

  function drawStatements() {
    commits = [];
    fieldErrors = [];
    clear(
      statementsBox,
      policy.statements.map((st, i) => {
        const nameIn = h("input", { type: "text", autocomplete: "off", value: st.name || "" });
        nameIn.addEventListener("input", () => (st.name = nameIn.value));
        const radioName = nextId("effect");
        const radio = (value, label) => {
          const input = h("input", { type: "radio", name: radioName, value, checked: st.effect === value });
          input.addEventListener("change", () => (st.effect = value));
          return h("label", {}, input, label);
        };
        const principals = chipList({ label: "Principals", values: (st.principals = st.principals || []), placeholder: "* or coreweave/<user id> or role/…" });
        const actions = chipList({ label: "Actions", values: (st.actions = st.actions || []), suggestions: (session.info && session.info.actions) || [], placeholder: "s3:GetObject" });
        const resources = chipList({ label: "Resources", values: (st.resources = st.resources || []), placeholder: "* or my-bucket or my-bucket/*" });
        commits.push(principals.commit, actions.commit, resources.commit);
        const stName = field({ label: "Statement name", input: nameIn });
        fieldErrors.push({ name: stName.setError, principals: principals.setError, actions: actions.setError, resources: resources.setError });
        const remove = h("button", { type: "button", class: "button small", disabled: policy.statements.length === 1, "aria-label": `Remove statement ${i + 1}` }, "Remove statement");
        remove.addEventListener("click", () => {
          policy.statements.splice(i, 1);
          drawStatements();
          addStatement.focus();
        });
        return h(
          "fieldset",
          { class: "statement", dataset: { statement: String(i) } },
          h("legend", {}, `Statement ${i + 1}`),
          h("div", { class: "statement-head" }, remove),
          h(
            "div",
            { class: "grid-2" },
            stName.wrap,
            h("fieldset", { class: "radio-group field" }, h("legend", {}, "Access"), radio("Allow", "Allow access"), radio("Deny", "Deny access")),
          ),
          principals.wrap,
          actions.wrap,
          resources.wrap,
        );
      }),
    );
  }
  addStatement.addEventListener("click", () => {
    policy.statements.push(blankStatement());
    drawStatements();
    const last = statementsBox.querySelector("fieldset.statement:last-of-type input");
    if (last) last.focus();
  });

  function fromBuilder() {
    for (const commit of commits) commit();
    if (!editing) policy.name = nameInput.value.trim();
    return { version: policy.version || VERSION, name: policy.name, statements: policy.statements };
  }

  // Tabs: Builder | JSON. Switching to the builder parses the JSON (and says what is wrong).
  const tabBuilder = h("button", { type: "button", role: "tab", "aria-selected": "true", id: nextId("tab") }, "Builder");
  const tabJson = h("button", { type: "button", role: "tab", "aria-selected": "false", tabindex: "-1", id: nextId("tab") }, "JSON");
  builder.setAttribute("role", "tabpanel");
  builder.setAttribute("aria-labelledby", tabBuilder.id);
  jsonView.setAttribute("role", "tabpanel");
  jsonView.setAttribute("aria-labelledby", tabJson.id);
  let mode = "builder";
  function select(next) {
    errorBox.hidden = true;
    if (next === mode) return;
    if (next === "json") {
      jsonArea.value = JSON.stringify(fromBuilder(), null, 2);
    } else {
      let parsed;
      try {
        parsed = JSON.parse(jsonArea.value);
      } catch (err) {
        showError(`The JSON is not valid: ${err.message}`);
        return;
      }
      if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.statements)) {
        showError("The JSON must be an object with a statements list.");
        return;
      }
      policy = parsed;
      if (editing) policy.name = name;
      if (!policy.statements.length) policy.statements.push(blankStatement());
      nameInput.value = policy.name || "";
      drawStatements();
    }
    mode = next;
    builder.hidden = mode !== "builder";
    jsonView.hidden = mode !== "json";
    tabBuilder.setAttribute("aria-selected", String(mode === "builder"));
    tabJson.setAttribute("aria-selected", String(mode === "json"));
    tabBuilder.tabIndex = mode === "builder" ? 0 : -1;
    tabJson.tabIndex = mode === "json" ? 0 : -1;
  }
  tabBuilder.addEventListener("click", () => select("builder"));
  tabJson.addEventListener("click", () => select("json"));
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Editor" }, tabBuilder, tabJson);
  tablist.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      const next = mode === "builder" ? tabJson : tabBuilder;
      next.click();
      next.focus();
    }
  });

  // A google.rpc.BadRequest field such as policy.statements[2].actions[0] points at one
  // input of one statement: the message is shown there too.
  function showFieldErrors(err) {
    for (const [path, description] of Object.entries(err.fields || {})) {
      const m = /^policy\.statements\[(\d+)\]\.(name|principals|actions|resources)/.exec(path);
      if (m && fieldErrors[Number(m[1])]) fieldErrors[Number(m[1])][m[2]](description);
      if (path === "policy.name") nameField.setError(description);
    }
  }

  function clearFieldErrors() {
    for (const setters of fieldErrors) for (const set of Object.values(setters)) set("");
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest" });
  }

  const save = h("button", { type: "submit", class: "button primary" }, editing ? "Save changes" : "Create policy");
  const cancel = h("a", { class: "button", href: BASE, "data-link": true }, "Cancel");
  const form = h("form", { novalidate: true }, errorBox, tablist, builder, jsonView, h("div", { class: "editor-foot" }, cancel, save));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    nameField.setError("");
    clearFieldErrors();
    let body;
    if (mode === "json") {
      try {
        body = JSON.parse(jsonArea.value);
      } catch (err) {
        showError(`The JSON is not valid: ${err.message}`);
        jsonArea.focus();
        return;
      }
      if (editing && body && typeof body === "object") body.name = name;
    } else {
      body = fromBuilder();
      if (!body.name) {
        nameField.setError("A policy needs a name.");
        nameInput.focus();
        return;
      }
    }
    save.disabled = true;
    try {
      await api("POST", "/v1/cwobject/access-policy", { policy: body });
      toast(editing ? `Policy ${body.name} saved` : `Policy ${body.name} created`);
      navigate(BASE);
    } catch (err) {
      save.disabled = false;
      if (mode === "builder") showFieldErrors(err);
      showError(err.message);
    }
  });

  main.append(
    h("nav", { "aria-label": "Breadcrumb" }, h("ol", { class: "breadcrumbs" }, h("li", {}, h("a", { href: BASE, "data-link": true }, "Organization Access Policies")), h("li", {}, h("span", { "aria-current": "page" }, editing ? name : "New policy")))),
    pageHeader(title),
    h("p", { class: "page-intro" }, "Each statement allows or denies its actions to its principals on its resources. Resources are short forms: * , a bucket name, or bucket/key-pattern."),
    form,
  );
  drawStatements();
  (editing ? statementsBox.querySelector("input") : nameInput).focus();
}
