// Access Keys: list and search, Create Key (temporary or permanent; the secret shown once),
// Revoke (confirmed by typing the key ID), suspend and reactivate a principal's keys.
// Every call goes to the control plane's own routes, /v1/cwobject/...

import { api, session } from "./api.js";
import {
  cellText,
  clear,
  confirmDialog,
  copyButton,
  copyText,
  field,
  formatDate,
  h,
  listPage,
  menuButton,
  nextId,
  submitDialog,
  toast,
} from "./ui.js";

const PERMANENT = "1970-01-01T00:00:00Z";
const STATUS_LABELS = { ACTIVE: "Active", FULL_SUSPENDED: "Suspended", EXPIRED: "Expired", REVOKED: "Revoked" };

async function fetchAllKeys() {
  const all = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api("GET", `/v1/cwobject/access-key?offset=${offset}&limit=1000`);
    const info = page.info || [];
    all.push(...info);
    if (info.length < 1000) return all;
  }
}

function keyName(key) {
  return (key.attributes && key.attributes.name) || "";
}

export async function renderKeys(ctx) {
  const { main } = ctx;
  let keys = [];
  let showInactive = false;

  const createBtn = h("button", { type: "button", class: "button primary" }, "Create Key");
  createBtn.addEventListener("click", () => openCreateDialog(reload));
  const inactiveId = nextId("inactive");
  const inactive = h("input", { type: "checkbox", id: inactiveId });
  inactive.addEventListener("change", () => {
    showInactive = inactive.checked;
    draw();
  });
  // Coffer extension: "not used for N days" (0 or empty: every key), from lastUsed / createdAt.
  let unusedDays = 0;
  const unusedId = nextId("unused");
  const unused = h("input", { type: "number", min: "0", max: "36500", step: "any", id: unusedId, class: "narrow", "data-testid": "unused-days" });
  unused.addEventListener("input", () => {
    const n = Number(unused.value);
    unusedDays = Number.isFinite(n) && n > 0 ? n : 0;
    draw();
  });
  const page = listPage(main, {
    title: "Access Keys",
    action: createBtn,
    intro:
      "Access keys sign S3 requests. Temporary keys expire after their duration; permanent keys last until revoked. "
      + "Suspending a principal blocks all of its keys until it is reactivated.",
    searchLabel: "Search by name or principal",
    draw,
    extras: [
      h("label", { class: "row", for: inactiveId }, inactive, "Show revoked and expired keys"),
      h("label", { class: "row", for: unusedId }, "Not used for", unused, "days"),
    ],
    loading: "Loading access keys…",
  });

  function matches(key, q) {
    if (!showInactive && (key.status === "REVOKED" || key.status === "EXPIRED")) return false;
    if (unusedDays && !unusedFor(key, unusedDays)) return false;
    if (!q) return true;
    return keyName(key).toLowerCase().includes(q) || (key.principalName || "").toLowerCase().includes(q);
  }

  function draw() {
    page.show(keys, {
      nouns: ["key", "keys"],
      matches,
      empty: ["No access keys yet", "Create a key to sign S3 requests with it."],
      noMatch: ["No keys match", page.query ? `Nothing matches “${page.query}”.` : "Every key here is revoked or expired."],
      label: "Access keys",
      columns: [{ title: "Name", width: "16%" }, { title: "Access Key ID", width: "17%" }, { title: "Principal", width: "22%" }, { title: "Status", width: "10%" }, { title: "Expires", width: "15%" }, { title: "Last used", width: "14%" }, { title: "Actions", actions: true }],
      row: keyRow,
    });
  }

  function keyRow(key) {
    const permanent = key.expiry === PERMANENT;
    const suspended = key.status === "FULL_SUSPENDED";
    const live = key.status === "ACTIVE" || suspended;
    const menu = menuButton(`Actions for key ${key.accessKeyId}`, [
      {
        label: "Copy access key ID",
        onSelect: async () => toast((await copyText(key.accessKeyId)) ? "Access key ID copied" : key.accessKeyId),
      },
      {
        label: suspended ? "Reactivate principal's keys…" : "Suspend principal's keys…",
        onSelect: () => openStatusDialog(key.principalName, !suspended, reload),
      },
      { label: "Rotate…", disabled: !live || rotating(key), onSelect: () => openRotateDialog(key, reload) },
      { label: "Revoke…", danger: true, disabled: !live, onSelect: () => openRevokeDialog(key, reload) },
    ]);
    return h(
      "tr",
      { dataset: { keyId: key.accessKeyId } },
      h("td", {}, keyName(key) ? cellText(keyName(key)) : h("span", { class: "cell count" }, "—")),
      h("td", {}, cellText(key.accessKeyId, "mono")),
      h("td", {}, cellText(key.principalName, "mono")),
      h("td", {}, h("span", { class: `badge ${key.status}` }, STATUS_LABELS[key.status] || key.status)),
      h("td", {}, permanent ? cellText("Never (permanent)") : cellText(formatDate(key.expiry)), inSightBadge(key), rotationNote(key)),
      h("td", { "data-testid": "last-used" }, lastUsedCell(key)),
      h("td", { class: "actions" }, menu),
    );
  }

  async function reload() {
    try {
      keys = await fetchAllKeys();
      keys.sort((a, b) => keyName(a).localeCompare(keyName(b)) || a.accessKeyId.localeCompare(b.accessKeyId));
      draw();
    } catch (err) {
      page.failed("The access keys could not be listed.", err);
    }
  }
  await reload();
}

// --- Last used, expiry in sight, rotation (Coffer extensions) -------------------------------
const DAY_MS = 86400 * 1000;

function unusedFor(key, days) {
  const since = (key.lastUsed && key.lastUsed.time) || key.createdAt;
  return !since || Date.parse(since) < Date.now() - days * DAY_MS;
}

function lastUsedCell(key) {
  const used = key.lastUsed;
  if (!used) return h("span", { class: "cell count" }, "Not used yet");
  return h("span", { class: "cell", title: `${used.operation} from ${used.sourceIp} (${used.face})` }, formatDate(used.time), h("div", { class: "hint" }, `${used.operation} · ${used.sourceIp}`));
}

const IN_SIGHT = { EXPIRES_SOON: "Expires soon", AGED: "Old: rotate it" };

function inSightBadge(key) {
  const label = IN_SIGHT[key.expiryInSight];
  return label ? h("span", { class: "badge FULL_SUSPENDED", "data-testid": "in-sight" }, label) : null;
}

function rotating(key) {
  return Boolean(key.rotation && key.rotation.revokeAt);
}

function rotationNote(key) {
  if (!rotating(key) || key.status !== "ACTIVE") return null;
  return h("div", { class: "hint", "data-testid": "rotation-note" }, `Rotated to ${key.rotation.successor || "a new key"}; revoked ${formatDate(key.rotation.revokeAt)}`);
}

const OVERLAPS = [
  ["900", "15 minutes"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "7 days"],
  ["0", "None: revoke the old key now"],
];

function openRotateDialog(key, onDone) {
  const overlap = h("select", { "data-testid": "rotate-overlap" }, ...OVERLAPS.map(([v, label]) => h("option", { value: v }, label)));
  overlap.value = "3600";
  const overlapField = field({ label: "Overlap", input: overlap, hint: "Both keys work meanwhile; the old key is revoked when it ends." });
  const { dlg, submit: go, showError } = submitDialog({
    onSubmit: submit,
    title: "Rotate Key",
    body: [
      h("p", {}, "Mint a successor of ", h("code", {}, key.accessKeyId), keyName(key) ? ` (${keyName(key)})` : "", " with the same name, attributes and scope, and revoke this key after the overlap."),
      overlapField.wrap,
    ],
    submitLabel: "Rotate",
    initialFocus: overlap,
  });

  async function submit() {
    go.disabled = true;
    try {
      const created = await api("POST", "/v1/cwobject/coffer/access-key/rotate", { accessKey: key.accessKeyId, overlapSeconds: Number(overlap.value) });
      showSecret(dlg, created);
      dlg.dialog.querySelector("h2").textContent = "Key rotated";
      onDone();
    } catch (err) {
      go.disabled = false;
      showError(err.message);
    }
  }
}

// --- Create Key --------------------------------------------------------------------------
function openCreateDialog(onCreated) {
  const name = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "63" });
  const nameField = field({ label: "Name", input: name, hint: "Letters, digits, '-', '_' and '.', up to 63 characters; shown in the key list." });
  const max = session.info ? session.info.maxKeyDuration : 43200;
  const duration = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", value: "3600" });
  const durationField = field({
    label: "Duration (seconds)",
    input: duration,
    hint: `How long the temporary key is valid: 1 to ${max} seconds.`,
  });
  const permanentId = nextId("permanent");
  const permanent = h("input", { type: "checkbox", role: "switch", id: permanentId });
  permanent.addEventListener("change", () => {
    duration.disabled = permanent.checked;
    durationField.setError("");
  });
  // Coffer extension: an optional scope narrows the key below its owner (docs/policies.md, "Scoped keys").
  const scope = h("textarea", { class: "mono", rows: "5", spellcheck: "false", placeholder: '{"statements": [{"name": "ci", "effect": "Allow", "actions": ["s3:PutObject"], "resources": ["my-bucket/builds/*"]}]}' });
  const scopeField = field({
    label: "Scope (JSON)",
    input: scope,
    hint: "Optional. The key may then do only what both you and this scope allow; it cannot be changed later.",
  });
  const { dlg, submit: create, errorBox, showError } = submitDialog({
    onSubmit: submit,
    title: "Create Key",
    body: [
      nameField.wrap,
      durationField.wrap,
      h(
        "div",
        { class: "field" },
        h("label", { class: "switch", for: permanentId }, permanent, "Enable Permanent Key"),
        h("div", { class: "hint" }, "A permanent key never expires; revoke it when it is no longer needed."),
      ),
      scopeField.wrap,
    ],
    submitLabel: "Create",
    initialFocus: name,
  });

  async function submit() {
    errorBox.hidden = true;
    nameField.setError("");
    durationField.setError("");
    let seconds = 0;
    if (!permanent.checked) {
      const raw = duration.value.trim();
      if (raw === "" || raw === "0") {
        durationField.setError("Enter a duration of at least 1 second, or enable Permanent Key.");
        duration.focus();
        return;
      }
      // Anything else goes to the server as typed: its validation message is the one shown.
      seconds = /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    const body = { durationSeconds: seconds };
    if (name.value.trim()) body.attributes = { name: name.value.trim() };
    scopeField.setError("");
    if (scope.value.trim()) {
      try {
        body.scope = JSON.parse(scope.value);
      } catch (err) {
        scopeField.setError(`The scope is not valid JSON: ${err.message}`);
        scope.focus();
        return;
      }
    }
    create.disabled = true;
    try {
      const created = await api("POST", "/v1/cwobject/access-key", body);
      showSecret(dlg, created);
      onCreated();
    } catch (err) {
      create.disabled = false;
      const fields = err.fields || {};
      if (fields.durationSeconds) {
        durationField.setError(`${err.message}`);
        duration.focus();
      } else if (Object.keys(fields).some((f) => f.startsWith("attributes"))) {
        nameField.setError(err.message);
        name.focus();
      } else if (Object.keys(fields).some((f) => f.startsWith("scope"))) {
        scopeField.setError(err.message);
        scope.focus();
      } else {
        showError(err.message);
      }
    }
  }
}

function profileText(created) {
  const info = session.info || {};
  const name = (created.attributes && created.attributes.name) || created.accessKeyId.toLowerCase();
  return [
    `[profile coffer-${name}]`,
    `aws_access_key_id = ${created.accessKeyId}`,
    `aws_secret_access_key = ${created.secretKey}`,
    `endpoint_url = ${info.s3Endpoint || "http://127.0.0.1:8490"}`,
    `region = ${(info.defaultZone || "US-EAST-04A")}`,
    "s3 =",
    "    addressing_style = path",
    "",
  ].join("\n");
}

function showSecret(dlg, created) {
  const permanent = created.expiry === PERMANENT;
  const idInput = h("input", { type: "text", readOnly: true, class: "mono", value: created.accessKeyId, id: nextId("akid"), "data-testid": "new-access-key-id" });
  const secretInput = h("input", { type: "text", readOnly: true, class: "mono", value: created.secretKey, id: nextId("secret"), "data-testid": "new-secret-key" });
  const profile = h("textarea", { readOnly: true, class: "profile", rows: "8", wrap: "off", id: nextId("profile"), "data-testid": "aws-profile" });
  profile.value = profileText(created);
  const done = h("button", { type: "button", class: "button primary" }, "Done");
  done.addEventListener("click", () => dlg.close());
  clear(
    dlg.body,
    h("div", { class: "warning", role: "note" }, h("strong", {}, "Copy the secret key now. "), "It will not be shown again: Coffer stores it encrypted and never returns it."),
    h(
      "div",
      { class: "secret-block" },
      h("div", { class: "field" }, h("label", { for: idInput.id }, "Access Key ID"), h("div", { class: "row" }, idInput, copyButton(idInput, "Access key ID"))),
      h("div", { class: "field" }, h("label", { for: secretInput.id }, "Secret Key"), h("div", { class: "row" }, secretInput, copyButton(secretInput, "Secret key"))),
      h(
        "div",
        { class: "field" },
        h("label", { for: profile.id }, "aws-cli profile"),
        profile,
        h("div", { class: "row", style: "justify-content:space-between;margin-top:6px" }, h("span", { class: "hint" }, "Paste into ~/.aws/config, then use --profile ", h("code", {}, profile.value.split("]")[0].slice(9)), "."), copyButton(profile, "Profile")),
      ),
      h("p", { class: "hint" }, `Principal ${created.principalName}; ${permanent ? "permanent key (never expires)" : `expires ${formatDate(created.expiry)}`}.`),
      created.scope ? h("p", { class: "hint", "data-testid": "key-scope" }, `Scoped: ${created.scope.statements.length} statement(s); the key may do only what both you and its scope allow.`) : null,
    ),
  );
  clear(dlg.footer, done);
  dlg.dialog.querySelector("h2").textContent = "Key created";
  secretInput.focus();
  secretInput.select();
}

// --- Revoke / suspend ---------------------------------------------------------------------
function openRevokeDialog(key, onDone) {
  confirmDialog({
    title: "Revoke Key",
    message: [
      h("p", {}, "Revoking ", h("code", {}, key.accessKeyId), keyName(key) ? ` (${keyName(key)})` : "", " is permanent: every request signed with it is refused from now on."),
    ],
    typed: key.accessKeyId,
    typedLabel: `Type the key ID ${key.accessKeyId} to confirm`,
    confirmLabel: "Revoke",
    action: async () => {
      await api("POST", "/v1/cwobject/revoke-access-key/access-key", { accessKey: key.accessKeyId });
      toast(`Key ${key.accessKeyId} revoked`);
      onDone();
    },
  });
}

function openStatusDialog(principal, suspend, onDone) {
  confirmDialog({
    title: suspend ? "Suspend keys" : "Reactivate keys",
    message: suspend
      ? [h("p", {}, "Suspend every access key of ", h("code", {}, principal), ", including keys minted later? Requests signed with them are refused until the principal is reactivated.")]
      : [h("p", {}, "Reactivate the access keys of ", h("code", {}, principal), "? Keys that are not revoked or expired work again.")],
    confirmLabel: suspend ? "Suspend keys" : "Reactivate keys",
    danger: suspend,
    action: async () => {
      await api("PUT", "/v1/cwobject/access-key-status", {
        principalName: principal,
        status: suspend ? "ACCESS_KEY_STATUS_SUSPENDED" : "ACCESS_KEY_STATUS_ACTIVE",
      });
      toast(suspend ? `Keys of ${principal} suspended` : `Keys of ${principal} reactivated`);
      onDone();
    },
  });
}
