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
  const page = listPage(main, {
    title: "Access Keys",
    action: createBtn,
    intro:
      "Access keys sign S3 requests. Temporary keys expire after their duration; permanent keys last until revoked. "
      + "Suspending a principal blocks all of its keys until it is reactivated.",
    searchLabel: "Search by name or principal",
    draw,
    extras: [h("label", { class: "row", for: inactiveId }, inactive, "Show revoked and expired keys")],
    loading: "Loading access keys…",
  });

  function matches(key, q) {
    if (!showInactive && (key.status === "REVOKED" || key.status === "EXPIRED")) return false;
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
      columns: [{ title: "Name", width: "20%" }, { title: "Access Key ID", width: "19%" }, { title: "Principal", width: "27%" }, { title: "Status", width: "11%" }, { title: "Expires", width: "17%" }, { title: "Actions", actions: true }],
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
      { label: "Revoke…", danger: true, disabled: !live, onSelect: () => openRevokeDialog(key, reload) },
    ]);
    return h(
      "tr",
      { dataset: { keyId: key.accessKeyId } },
      h("td", {}, keyName(key) ? cellText(keyName(key)) : h("span", { class: "cell count" }, "—")),
      h("td", {}, cellText(key.accessKeyId, "mono")),
      h("td", {}, cellText(key.principalName, "mono")),
      h("td", {}, h("span", { class: `badge ${key.status}` }, STATUS_LABELS[key.status] || key.status)),
      h("td", {}, permanent ? cellText("Never (permanent)") : cellText(formatDate(key.expiry))),
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
