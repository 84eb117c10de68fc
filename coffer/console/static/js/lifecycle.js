// A bucket's Lifecycle tab: its rules (filter and actions, as S3 has them), a form that adds a
// rule (id, prefix, days to expire current versions, noncurrent versions, unfinished uploads),
// and a delete per rule. Through /console/api/buckets/<bucket>/lifecycle, which edits the
// bucket's lifecycle configuration with real S3 requests; S3 checks the values.

import { api, q } from "./api.js";
import { actionsCell, cellText, clear, confirmDialog, dataTable, emptyState, errorState, field, formDialog, h, toast } from "./ui.js";

function lifecycleApi(bucket, rest = "") {
  return `/console/api/buckets/${encodeURIComponent(bucket)}/lifecycle${rest}`;
}

function days(n, what) {
  return `${what} after ${n} day${n === 1 ? "" : "s"}`;
}

// What a rule covers, in words.
export function describeFilter(rule) {
  const parts = [];
  if (rule.prefix) parts.push(`prefix ${rule.prefix}`);
  for (const t of rule.tags) parts.push(`tag ${t.key}=${t.value}`);
  if (rule.sizeGreaterThan !== null) parts.push(`larger than ${rule.sizeGreaterThan} B`);
  if (rule.sizeLessThan !== null) parts.push(`smaller than ${rule.sizeLessThan} B`);
  return parts.length ? parts.join(", ") : "whole bucket";
}

// What a rule does, in words.
export function describeActions(rule) {
  const parts = [];
  if (rule.expirationDays !== null) parts.push(days(rule.expirationDays, "Expire current versions"));
  if (rule.expirationDate) parts.push(`Expire current versions on ${rule.expirationDate.slice(0, 10)}`);
  if (rule.expiredObjectDeleteMarker) parts.push("Remove expired delete markers");
  if (rule.noncurrentDays !== null) {
    const keep = rule.newerNoncurrentVersions ? ` (keeping the ${rule.newerNoncurrentVersions} newest)` : "";
    parts.push(days(rule.noncurrentDays, "Delete noncurrent versions") + keep);
  }
  if (rule.abortDays !== null) parts.push(days(rule.abortDays, "Abort incomplete uploads"));
  return parts.join("; ");
}

export async function renderLifecycleTab(bucket, panel) {
  const add = h("button", { type: "button", class: "button primary" }, "Add rule");
  const body = h("div", { class: "table-wrap" }, h("p", { class: "loading empty" }, "Loading lifecycle rules…"));
  add.addEventListener("click", () => openAddRule(bucket, draw));
  clear(
    panel,
    h("div", { class: "toolbar" }, h("p", { class: "hint" }, "Rules delete objects and abandon uploads by themselves. Where rules overlap, the one that deletes sooner wins."), h("span", { class: "spacer" }), add),
    body,
  );
  let rules;
  try {
    rules = (await api("GET", lifecycleApi(bucket))).rules;
  } catch (err) {
    clear(body, errorState("The lifecycle rules could not be read.", err));
    return;
  }
  draw(rules);

  function draw(list) {
    rules = list;
    if (!rules.length) {
      clear(body, emptyState("No lifecycle rules", "Add a rule to expire objects or abort unfinished uploads."));
      return;
    }
    clear(
      body,
      dataTable({
        label: "Lifecycle rules",
        columns: [{ title: "ID", width: "22%" }, { title: "Status", width: "10%" }, { title: "Applies to", width: "25%" }, { title: "Actions", width: "37%" }, { title: "Menu", actions: true }],
        rows: rules.map((rule) =>
          h(
            "tr",
            { dataset: { rule: rule.id } },
            h("td", {}, cellText(rule.id)),
            h("td", {}, cellText(rule.enabled ? "Enabled" : "Disabled")),
            h("td", {}, cellText(describeFilter(rule))),
            h("td", {}, cellText(describeActions(rule))),
            actionsCell(`Actions for rule ${rule.id}`, [{ label: "Delete…", danger: true, onSelect: () => deleteRule(bucket, rule.id, draw) }]),
          ),
        ),
      }),
    );
  }
}

function dayInput() {
  return h("input", { type: "text", inputmode: "numeric", autocomplete: "off", pattern: "[0-9]*" });
}

function openAddRule(bucket, onSaved) {
  const id = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "255" });
  const prefix = h("input", { type: "text", autocomplete: "off", spellcheck: "false", class: "mono" });
  const expiration = dayInput();
  const noncurrent = dayInput();
  const abort = dayInput();
  const fields = {
    id: field({ label: "Rule ID", input: id, hint: "Unique in this bucket's rules, up to 255 characters." }),
    prefix: field({ label: "Prefix (optional)", input: prefix, hint: "Only keys that start with this; empty: the whole bucket." }),
    expirationDays: field({ label: "Expire current versions after (days)", input: expiration }),
    noncurrentDays: field({ label: "Delete noncurrent versions after (days)", input: noncurrent, hint: "Counted from when a newer version replaced them (versioned buckets)." }),
    abortDays: field({ label: "Abort incomplete multipart uploads after (days)", input: abort }),
  };
  formDialog({
    title: "Add lifecycle rule",
    body: Object.values(fields).map((f) => f.wrap),
    submitLabel: "Add rule",
    fields,
    initialFocus: id,
    submit: async (dlg) => {
      const ruleId = fields.id.required("Give the rule an ID.");
      if (!ruleId) throw Object.assign(new Error("Give the rule an ID."), { fields: { id: "Give the rule an ID." } });
      const rule = { id: ruleId, prefix: prefix.value };
      const inputs = { expirationDays: expiration, noncurrentDays: noncurrent, abortDays: abort };
      for (const [name, input] of Object.entries(inputs)) {
        const text = input.value.trim();
        if (!text) continue;
        if (!/^\d+$/.test(text)) {
          const message = "A whole number of days.";
          throw Object.assign(new Error(message), { fields: { [name]: message } });
        }
        rule[name] = Number(text);
      }
      if (!Object.keys(inputs).some((name) => name in rule)) {
        throw new Error("Choose at least one action: expire current versions, delete noncurrent versions or abort uploads.");
      }
      const { rules } = await api("POST", lifecycleApi(bucket, "/rules"), rule);
      dlg.close();
      onSaved(rules);
      toast(`Rule ${ruleId} added`);
    },
  });
}

function deleteRule(bucket, ruleId, onDeleted) {
  confirmDialog({
    title: "Delete lifecycle rule",
    message: `Delete rule ${ruleId} of ${bucket}? Objects it has not deleted yet stay.`,
    confirmLabel: "Delete rule",
    action: async () => {
      const { rules } = await api("DELETE", lifecycleApi(bucket, `/rules${q({ id: ruleId })}`));
      onDeleted(rules);
      toast(`Rule ${ruleId} deleted`);
    },
  });
}
