// The management surface: a bucket's settings and usage (GetBucketInfo, SetBucketSettings),
// every bucket's usage (ListBucketInfo), the Organization Settings page
// (GET/PUT /v1/cwobject/organization/settings), and the bucket-policy lock-out check
// (CheckBucketPolicyLockout). The page calls the control plane's own routes.

import { api, q } from "./api.js";
import { clear, confirmDialog, dataTable, errorState, field, formatBytes, h, nextId, pageHeader, toast } from "./ui.js";

const CW = "/v1/cwobject";
const INFO = `${CW}/bucket-info`;
const ORG = `${CW}/organization/settings`;
const NO_CAP = "18446744073709551615"; // a cap no bucket can reach: the server stores "no cap"
const UNITS = [
  ["PiB", 1024n ** 5n],
  ["TiB", 1024n ** 4n],
  ["GiB", 1024n ** 3n],
  ["MiB", 1024n ** 2n],
  ["KiB", 1024n],
  ["bytes", 1n],
];

// --- usage ---------------------------------------------------------------------------------
// "3 objects · 1.2 KiB": current objects over every storage class, and the total billed.
export function usageSummary(usage) {
  let objects = 0n;
  let total = "0 B";
  for (const m of usage || []) {
    const kind = m.measurementType || "";
    if (kind === "TOTAL_BYTES") total = m.valueHumanReadable;
    else if (kind.endsWith("_OBJECTS") && !kind.endsWith("_NONCURRENT_OBJECTS")) objects += BigInt(m.value || "0");
  }
  return `${objects.toLocaleString()} object${objects === 1n ? "" : "s"} · ${total}`;
}

// Every bucket's BucketInfo by name (ListBucketInfo, page by page).
export async function bucketInfos() {
  const out = new Map();
  for (let offset = 0; ; offset += 1000) {
    const page = (await api("GET", `${INFO}${q({ offset, limit: 1000 })}`)).info || [];
    for (const info of page) out.set(info.name, info);
    if (page.length < 1000) return out;
  }
}

export async function bucketInfo(bucket) {
  return (await api("GET", `${INFO}/${encodeURIComponent(bucket)}`)).info;
}

// --- sizes -----------------------------------------------------------------------------------
// "1.5" GiB -> 1610612736n, exactly; null when the text is not a plain decimal number.
function toBytes(text, unit) {
  const m = /^\s*(\d{1,20})(?:\.(\d{1,12}))?\s*$/.exec(text);
  if (!m) return null;
  const mult = UNITS.find(([name]) => name === unit)[1];
  const frac = m[2] || "";
  return BigInt(m[1]) * mult + (frac ? (BigInt(frac) * mult) / 10n ** BigInt(frac.length) : 0n);
}

// 10737418240n -> ["10", "GiB"]: the largest unit that divides the size exactly.
function splitBytes(n) {
  for (const [name, mult] of UNITS) {
    if (n >= mult && n % mult === 0n) return [String(n / mult), name];
  }
  return [String(n), "bytes"];
}

function exactBytes(value) {
  const n = BigInt(value);
  return `${formatBytes(Number(n))} (${n.toLocaleString()} bytes)`;
}

function facts(label, pairs) {
  return h("dl", { class: "facts", "aria-label": label }, pairs.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function onOff(on) {
  return on ? "On" : "Off";
}

function toggle(label, hint) {
  const id = nextId("switch");
  const input = h("input", { type: "checkbox", role: "switch", id });
  const wrap = h("div", { class: "field" }, h("label", { class: "switch", for: id }, input, label), hint ? h("div", { class: "hint" }, hint) : null);
  return { input, wrap };
}

function section(title, ...children) {
  const id = nextId("section");
  return h("section", { class: "settings-section", "aria-labelledby": id }, h("h2", { id }, title), children);
}

// A form's submit: clear the errors, run `save`, and on failure show the API's message in
// `alertBox` and under the fields it names (google.rpc.BadRequest).
function submitter(form, alertBox, button, fields, save) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    alertBox.hidden = true;
    for (const f of Object.values(fields)) f.setError("");
    button.disabled = true;
    try {
      await save();
    } catch (err) {
      for (const [name, description] of Object.entries(err.fields || {})) if (fields[name]) fields[name].setError(description);
      alertBox.textContent = err.message || String(err);
      alertBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}

// --- a bucket's Settings tab -------------------------------------------------------------------
export async function renderBucketSettings(bucket, panel, onChanged) {
  clear(panel, h("p", { class: "loading" }, "Loading the bucket's settings and usage…"));
  let info;
  try {
    info = await bucketInfo(bucket);
  } catch (err) {
    clear(panel, errorState("The bucket's settings and usage could not be read.", err));
    return;
  }
  let current = info.settings || {};

  const inEffect = h("div", { "data-testid": "bucket-settings" });
  const audit = toggle("Audit logging", "Write this bucket's object reads, writes and deletes to the organization's audit-log bucket, while the organization's bucket audit logging is on.");
  const capOn = toggle("Capacity cap", "Refuse writes that would take the bucket past the cap (QuotaExceeded); a cap of 0 blocks every new write.");
  const capValue = h("input", { type: "text", inputmode: "decimal", autocomplete: "off", class: "size" });
  const unit = h("select", { "aria-label": "Unit of the capacity cap" }, UNITS.map(([name]) => h("option", { value: name }, name)));
  const capField = field({ label: "Maximum size", input: capValue });
  const capRow = h("div", { class: "row" });
  capValue.replaceWith(capRow);
  capRow.append(capValue, unit);
  const archive = toggle("Archive", "Move objects not read for a while to the archive tier. Coffer records and reports this setting; it has no colder tier of its own.");
  const days = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", class: "size" });
  const daysField = field({ label: "Days without access before archiving", input: days, hint: "At least 60." });
  const alertBox = h("div", { class: "alert", role: "alert", hidden: true });
  const save = h("button", { type: "submit", class: "button primary" }, "Save settings");
  const form = h(
    "form",
    { novalidate: true, "aria-label": "Bucket settings" },
    alertBox,
    audit.wrap,
    capOn.wrap,
    h("div", { class: "indent" }, capField.wrap),
    archive.wrap,
    h("div", { class: "indent" }, daysField.wrap),
    h("div", { class: "editor-foot" }, save),
  );
  const usageBody = h("div", { class: "table-wrap" });

  function show() {
    const cap = current.configuredCapacityCapBytes;
    clear(
      inEffect,
      facts("Settings in effect", [
        ["Audit logging", onOff(current.auditLoggingEnabled)],
        ["Capacity cap", cap === undefined ? "No cap" : exactBytes(cap)],
        ["Archive", current.archiveEnabled ? `After ${current.archiveAfterLastAccessDays} days without access` : "Off"],
      ]),
    );
    audit.input.checked = Boolean(current.auditLoggingEnabled);
    capOn.input.checked = cap !== undefined;
    [capValue.value, unit.value] = cap === undefined ? ["", "GiB"] : splitBytes(BigInt(cap));
    archive.input.checked = Boolean(current.archiveEnabled);
    days.value = current.archiveAfterLastAccessDays ?? "";
    sync();
  }
  function sync() {
    capValue.disabled = unit.disabled = !capOn.input.checked;
    days.disabled = !archive.input.checked;
  }
  function drawUsage(usage) {
    clear(
      usageBody,
      dataTable({
        label: `Usage of ${bucket}`,
        columns: [{ title: "Measurement", width: "45%" }, { title: "Value", width: "25%", class: "num" }, { title: "Exact", width: "30%", class: "num" }],
        rows: (usage || []).map((m) =>
          h("tr", { dataset: { measurement: m.measurementType } }, h("td", {}, h("code", {}, m.measurementType)), h("td", { class: "num" }, m.valueHumanReadable), h("td", { class: "num" }, BigInt(m.value).toLocaleString())),
        ),
      }),
    );
  }
  capOn.input.addEventListener("change", sync);
  archive.input.addEventListener("change", sync);

  // Only what changed is sent: SetBucketSettings changes the fields present and no others.
  function changes() {
    const out = {};
    if (audit.input.checked !== Boolean(current.auditLoggingEnabled)) out.auditLoggingEnabled = audit.input.checked;
    const had = current.configuredCapacityCapBytes;
    if (capOn.input.checked) {
      const bytes = toBytes(capValue.value, unit.value);
      if (bytes === null) {
        capField.setError("Enter a number, such as 10 or 1.5.");
        capValue.focus();
        return null;
      }
      if (String(bytes) !== had) out.capacityCapBytes = String(bytes);
    } else if (had !== undefined) {
      out.capacityCapBytes = NO_CAP;
    }
    if (archive.input.checked !== Boolean(current.archiveEnabled)) out.archiveEnabled = archive.input.checked;
    const d = days.value.trim();
    if (archive.input.checked && d !== "" && d !== String(current.archiveAfterLastAccessDays ?? "")) {
      out.archiveAfterLastAccessDays = /^-?\d{1,10}$/.test(d) ? Number(d) : d;
    }
    return out;
  }
  submitter(form, alertBox, save, { "settings.capacityCapBytes": capField, "settings.archiveAfterLastAccessDays": daysField }, async () => {
    const settings = changes();
    if (settings === null) return;
    if (!Object.keys(settings).length) {
      toast("Nothing to save: the settings are as shown");
      return;
    }
    current = (await api("PUT", `${CW}/bucket/settings`, { bucketName: bucket, settings })).settings;
    show();
    toast("Bucket settings saved");
    onChanged();
  });

  show();
  drawUsage(info.usage);
  clear(
    panel,
    section("Settings", inEffect, form),
    section("Usage", h("p", { class: "hint" }, "Kept as each write commits: current and noncurrent versions per storage class, and incomplete multipart uploads."), usageBody),
  );
}

// --- the bucket-policy lock-out check ------------------------------------------------------------
const LOST = {
  "s3:ListBucket": "list the bucket's objects",
  "s3:GetObject": "read the bucket's objects",
  "s3:PutBucketPolicy": "replace the bucket's policy",
};
const WHY = {
  "bucket-implicit-deny": "no statement of the policy allows it",
  "bucket-deny": "a Deny statement of the policy matches",
  "restricted-public-bucket": "the policy is public and RestrictPublicBuckets is on",
};

// Save `text` as the bucket's policy with `save()`, after asking the control plane whether it
// would lock the signed-in user out; if it would, only once they confirm in a dialog (where a
// failure of `save()` is then shown).
export async function saveUnlessLockedOut(bucket, text, save) {
  const report = await api("POST", `${CW}/auth/bucket-policy-lockout`, { bucketName: bucket, policy: text });
  if (!report.lockedOut) {
    await save();
    return;
  }
  const lost = report.checks.filter((c) => c.lockedOut);
  confirmDialog({
    title: "This policy would lock you out",
    message: [
      h("p", {}, "Under this policy ", h("code", {}, report.principalName), " could no longer:"),
      h(
        "ul",
        { class: "lost" },
        lost.map((c) => h("li", { dataset: { action: c.action } }, `${LOST[c.action] || c.action} (`, h("code", {}, c.action), `): ${WHY[c.rule] || c.rule}${c.statement ? ` (${c.statement})` : ""}`)),
      ),
      h("p", { class: "warning" }, "Once a bucket has a policy, only what it allows is allowed, even for the bucket's own organization. s3:PutBucketPolicy is decided by organization policies alone, so you could still replace the policy."),
    ],
    confirmLabel: "Save anyway",
    action: save,
  });
}

// --- Organization Settings -----------------------------------------------------------------------
export async function renderOrgSettings(ctx) {
  const { main, session } = ctx;
  const auditBucket = `cw-${String(session.user.orgId).toLowerCase()}-audit-logs`;
  const body = h("div", {}, h("p", { class: "loading" }, "Loading the organization's settings…"));
  main.append(
    pageHeader("Organization Settings"),
    h("p", { class: "page-intro" }, "Audit logs are written as gzip-compressed JSON lines into the organization's own bucket ", h("code", {}, auditBucket), ", which members may read (s3:GetObject, s3:ListBucket) but no one may change."),
    body,
  );
  let data;
  try {
    data = await api("GET", ORG);
  } catch (err) {
    clear(body, errorState("The organization's settings could not be read.", err));
    return;
  }
  let current = data.settings;
  const controlPlane = toggle("Control-plane audit logging", "Keys created and revoked, policies, settings and federation configurations changed: written under control-plane/.");
  const buckets = toggle("Bucket audit logging", "Object reads, writes and deletes, bucket creation and listing, of the buckets whose own audit logging is on: written under data-plane/.");
  const alertBox = h("div", { class: "alert", role: "alert", hidden: true });
  const save = h("button", { type: "submit", class: "button primary" }, "Save settings");
  const form = h("form", { novalidate: true, "aria-label": "Audit logging" }, alertBox, controlPlane.wrap, buckets.wrap, h("div", { class: "editor-foot" }, save));
  function show() {
    controlPlane.input.checked = current.controlPlaneAuditLoggingEnabled;
    buckets.input.checked = current.bucketAuditLoggingEnabled;
  }
  submitter(form, alertBox, save, {}, async () => {
    const settings = {};
    if (controlPlane.input.checked !== current.controlPlaneAuditLoggingEnabled) settings.controlPlaneAuditLoggingEnabled = controlPlane.input.checked;
    if (buckets.input.checked !== current.bucketAuditLoggingEnabled) settings.bucketAuditLoggingEnabled = buckets.input.checked;
    if (!Object.keys(settings).length) {
      toast("Nothing to save: the settings are as shown");
      return;
    }
    current = (await api("PUT", ORG, { settings })).settings;
    show();
    toast("Organization settings saved");
  });
  show();
  const { limits = {}, usage = {} } = data;
  const cap = limits.configuredCapacityCapBytes;
  clear(
    body,
    section("Audit logging", form),
    section(
      "Limits",
      h("p", { class: "hint" }, "Set by the operator of this Coffer (coffer admin org limits); read-only here."),
      h(
        "div",
        { "data-testid": "org-limits" },
        facts("Organization limits", [
          ["Buckets", `${usage.buckets} of at most ${limits.maxBuckets}`],
          ["Capacity cap", cap === undefined ? "No cap" : exactBytes(cap)],
          ["Stored", exactBytes(usage.bytes || "0")],
        ]),
      ),
    ),
  );
}
