// Workload Federation: the SAML and OIDC identity providers the organization trusts.
// Create a configuration (its generated Config ID is what workloads pass as configId),
// deactivate and activate it, delete it (confirmed by typing its name). Withdrawing trust
// revokes every key minted through the configuration.
// The page calls the control plane's own routes: /v1beta1/workload-federation/{saml,oidc}-configs.

import { api, session } from "./api.js";
import {
  cellText,
  clear,
  confirmDialog,
  copyButton,
  dataTable,
  emptyState,
  errorState,
  field,
  formatDate,
  formDialog,
  h,
  menuButton,
  nextId,
  pageHeader,
  toast,
} from "./ui.js";

const BASE = "/v1beta1/workload-federation";

const KINDS = {
  saml: {
    label: "SAML",
    path: `${BASE}/saml-configs`,
    source: { title: "IdP Entity ID", value: (c) => c.idpEntityId },
    audience: (c) => c.spAudience,
    empty: "Create a SAML configuration to let workloads exchange assertions of your IdP for access keys.",
  },
  oidc: {
    label: "OIDC",
    path: `${BASE}/oidc-configs`,
    source: { title: "Issuer URL", value: (c) => c.issuerUrl },
    audience: (c) => c.audience,
    empty: "Create an OIDC configuration to let workloads exchange tokens of your issuer for access keys.",
  },
};

function configPath(kind, config) {
  return `${KINDS[kind].path}/${encodeURIComponent(config.uid)}`;
}

export async function renderFederation(ctx) {
  const { main } = ctx;
  const sections = {};
  const createSaml = h("button", { type: "button", class: "button primary" }, "Create SAML configuration");
  createSaml.addEventListener("click", () => openCreateSaml(() => sections.saml.reload()));
  const createOidc = h("button", { type: "button", class: "button primary" }, "Create OIDC configuration");
  createOidc.addEventListener("click", () => openCreateOidc(() => sections.oidc.reload()));
  main.append(
    pageHeader("Workload Federation", createSaml, createOidc),
    h(
      "p",
      { class: "page-intro" },
      "Workloads sign in with your identity provider instead of a stored secret: they exchange a SAML assertion "
        + "or an OIDC token for a temporary access key. Deactivating or deleting a configuration revokes every key "
        + "minted through it.",
    ),
  );
  for (const kind of Object.keys(KINDS)) {
    sections[kind] = configSection(kind);
    main.append(sections[kind].wrap);
  }
  await Promise.all(Object.values(sections).map((s) => s.reload()));
}

// One kind's configurations: a heading, a count and the table.
function configSection(kind) {
  const spec = KINDS[kind];
  const titleId = nextId("fed-title");
  const count = h("span", { class: "count", "aria-live": "polite" });
  const body = h("div", { class: "table-wrap" }, h("p", { class: "loading empty" }, `Loading ${spec.label} configurations…`));
  const wrap = h(
    "section",
    { class: "fed-section", "aria-labelledby": titleId, dataset: { kind } },
    h("div", { class: "toolbar" }, h("h2", { id: titleId }, `${spec.label} configurations`), h("span", { class: "spacer" }), count),
    body,
  );
  let configs = [];

  function draw() {
    count.textContent = `${configs.length} configuration${configs.length === 1 ? "" : "s"}`;
    if (!configs.length) {
      clear(body, emptyState(`No ${spec.label} configurations yet`, spec.empty));
      return;
    }
    clear(
      body,
      dataTable({
        label: `${spec.label} configurations`,
        columns: [
          { title: "Name", width: "14%" },
          { title: "Config ID", width: "24%" },
          { title: spec.source.title, width: "20%" },
          { title: "Audience", width: "17%" },
          { title: "Status", width: "9%" },
          { title: "Created", width: "16%" },
          { actions: true },
        ],
        rows: configs.map((config) => configRow(config)),
      }),
    );
  }

  function configRow(config) {
    const status = config.active ? "Active" : "Inactive";
    const since = config.active ? "" : config.deactivatedAt ? `Inactive since ${formatDate(config.deactivatedAt)}` : "";
    const menu = menuButton(`Actions for ${spec.label} configuration ${config.name}`, [
      config.active
        ? { label: "Deactivate…", onSelect: () => setActive(kind, config, false, reload) }
        : { label: "Activate…", onSelect: () => setActive(kind, config, true, reload) },
      { label: "Delete…", danger: true, onSelect: () => deleteConfig(kind, config, reload) },
    ]);
    return h(
      "tr",
      { dataset: { configId: config.uid } },
      h("td", {}, h("span", { class: "cell", title: config.description ? `${config.name}: ${config.description}` : config.name }, config.name)),
      h("td", {}, h("div", { class: "row id-cell" }, cellText(config.uid, "mono"), copyButton(config.uid, `Config ID of ${config.name}`))),
      h("td", {}, cellText(spec.source.value(config), "mono")),
      h("td", {}, cellText(spec.audience(config), "mono")),
      h("td", {}, h("span", { class: `badge ${status}`, title: since || null }, status)),
      h("td", {}, cellText(formatDate(config.createdAt))),
      h("td", { class: "actions" }, menu),
    );
  }

  async function reload() {
    try {
      const data = await api("GET", spec.path);
      configs = (data.configs || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      draw();
    } catch (err) {
      count.textContent = "";
      clear(body, errorState(`The ${spec.label} configurations could not be listed.`, err));
    }
  }

  return { wrap, reload };
}

// --- create -----------------------------------------------------------------------------
function textInput(attrs = {}) {
  return h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
}

const NAME_HINT = "Unique among this organization's configurations of this kind: letters, digits, '_' and '-'.";

function openCreateSaml(onCreated) {
  const name = textInput({ maxlength: "255" });
  const entity = textInput({ class: "mono" });
  const certs = h("textarea", { class: "mono", rows: "8", spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----" });
  const description = textInput({ maxlength: "1024" });
  const fields = {
    name: field({ label: "Name", input: name, hint: NAME_HINT }),
    idpEntityId: field({ label: "IdP Entity ID", input: entity, hint: "The Issuer of your IdP's assertions (often its metadata URL), exactly as the IdP sends it." }),
    certificates: field({
      label: "X.509 Certificate (PEM)",
      input: certs,
      hint: "The IdP's signing certificate. Paste several PEM blocks to trust more than one while rotating.",
    }),
    description: field({ label: "Description (optional)", input: description }),
  };
  formDialog({
    title: "Create SAML configuration",
    body: Object.values(fields).map((f) => f.wrap),
    submitLabel: "Create",
    fields,
    wide: true,
    initialFocus: name,
    submit: async (dlg) => {
      const { config } = await api("POST", KINDS.saml.path, {
        name: name.value.trim(),
        idpEntityId: entity.value.trim(),
        certificates: certs.value,
        description: description.value.trim(),
      });
      onCreated();
      showCreated(dlg, "saml", config);
    },
  });
}

function openCreateOidc(onCreated) {
  const name = textInput({ maxlength: "255" });
  const issuer = textInput({ class: "mono" });
  const audience = textInput({ class: "mono" });
  const description = textInput({ maxlength: "1024" });
  const jwks = h("textarea", { class: "mono", rows: "6", spellcheck: "false", placeholder: '{"keys": [ … ]}' });
  const fields = {
    name: field({ label: "Name", input: name, hint: NAME_HINT }),
    issuerUrl: field({ label: "Issuer URL", input: issuer, hint: "Must equal the tokens' iss claim: an HTTPS URL (plain HTTP only on a loopback address)." }),
    audience: field({ label: "Audience", input: audience, hint: "Must be one of the tokens' aud values." }),
    description: field({ label: "Description (optional)", input: description }),
    jwks: field({
      label: "JWKS (optional)",
      input: jwks,
      hint: "An inline JSON Web Key Set of the issuer's public keys. Leave empty to fetch the keys through the issuer's discovery document.",
    }),
  };
  formDialog({
    title: "Create OIDC configuration",
    body: Object.values(fields).map((f) => f.wrap),
    submitLabel: "Create",
    fields,
    wide: true,
    initialFocus: name,
    submit: async (dlg) => {
      const body = {
        name: name.value.trim(),
        issuerUrl: issuer.value.trim(),
        audience: audience.value.trim(),
        description: description.value.trim(),
      };
      if (jwks.value.trim()) {
        try {
          body.jwks = JSON.parse(jwks.value);
        } catch (err) {
          const message = `The JWKS is not valid JSON: ${err.message}`;
          throw Object.assign(new Error(message), { fields: { jwks: message } });
        }
      }
      const { config } = await api("POST", KINDS.oidc.path, body);
      onCreated();
      showCreated(dlg, "oidc", config);
    },
  });
}

// A read-only value with a Copy button, as a labelled field.
function copyField(label, value, testId) {
  const input = textInput({ readOnly: true, class: "mono", value, id: nextId("copy"), "data-testid": testId });
  return h("div", { class: "field" }, h("label", { for: input.id }, label), h("div", { class: "row" }, input, copyButton(input, label)));
}

function showCreated(dlg, kind, config) {
  const orgId = config.orgUid || (session.info && session.info.user.orgId) || "";
  const done = h("button", { type: "button", class: "button primary" }, "Done");
  done.addEventListener("click", () => dlg.close());
  const idField = copyField("Config ID", config.uid, "new-config-id");
  const parts = [
    h("div", { class: "created-id" }, idField),
    copyField("Organization ID", orgId, "org-id"),
  ];
  if (kind === "saml") {
    parts.push(
      h("h3", { class: "sub-title" }, "Configure your IdP with"),
      copyField("SP audience (Entity ID)", config.spAudience, "sp-audience"),
      copyField("Recipient (ACS URL)", config.recipient, "recipient"),
      h(
        "p",
        { class: "hint" },
        "Your IdP must issue assertions for this audience and recipient. Workloads then call CreateAccessKeyFromSAML with ",
        h("code", {}, "orgId"),
        " and ",
        h("code", {}, "configId"),
        " set to the values above.",
      ),
    );
  } else {
    parts.push(
      h(
        "p",
        { class: "hint" },
        "Workloads exchange tokens whose ",
        h("code", {}, "iss"),
        " is ",
        h("code", {}, config.issuerUrl),
        " and whose ",
        h("code", {}, "aud"),
        " contains ",
        h("code", {}, config.audience),
        " by calling CreateAccessKeyFromOIDC with the organization ID above.",
      ),
    );
  }
  clear(dlg.body, parts);
  clear(dlg.footer, done);
  dlg.dialog.querySelector("h2").textContent = `${KINDS[kind].label} configuration ${config.name} created`;
  const input = idField.querySelector("input");
  input.focus();
  input.select();
}

// --- deactivate / activate / delete -------------------------------------------------------
function setActive(kind, config, active, onDone) {
  const label = KINDS[kind].label;
  confirmDialog({
    title: active ? `Activate ${label} configuration` : `Deactivate ${label} configuration`,
    message: active
      ? [h("p", {}, "Activate ", h("code", {}, config.name), "? Workloads can exchange its credentials for new access keys again. Keys revoked when it was deactivated stay revoked.")]
      : [
        h("p", {}, "Deactivate ", h("code", {}, config.name), "? Exchanges through it are refused until it is activated again."),
        h("p", { class: "warning" }, "Every access key minted through this configuration is revoked now."),
      ],
    confirmLabel: active ? "Activate" : "Deactivate",
    danger: !active,
    action: async () => {
      await api("PATCH", configPath(kind, config), { active });
      toast(`${label} configuration ${config.name} ${active ? "activated" : "deactivated"}`);
      onDone();
    },
  });
}

function deleteConfig(kind, config, onDone) {
  const label = KINDS[kind].label;
  confirmDialog({
    title: `Delete ${label} configuration`,
    message: [
      h("p", {}, "Delete ", h("code", {}, config.name), " (Config ID ", h("code", {}, config.uid), ")? Workloads can no longer exchange its credentials."),
      h("p", { class: "warning" }, "Every access key minted through this configuration is revoked. This cannot be undone."),
    ],
    typed: config.name,
    typedLabel: `Type the configuration name ${config.name} to confirm`,
    confirmLabel: "Delete",
    action: async () => {
      await api("DELETE", configPath(kind, config));
      toast(`${label} configuration ${config.name} deleted`);
      onDone();
    },
  });
}
