// Buckets: list, create (name, zone, versioning), delete; a bucket's objects browsed by
// prefix like folders, uploads with progress (multipart above 16 MiB), downloads, deletes,
// folders, the bucket policy. All through /console/api/buckets/..., which turns each call
// into real S3 requests signed with the session user's temporary key. Usage and settings come
// from the control plane (management.js).

import { api, q, session, upload } from "./api.js";
import {
  actionsCell,
  cellText,
  clear,
  confirmDialog,
  dataTable,
  emptyState,
  errorState,
  field,
  formatBytes,
  formatDate,
  h,
  listPage,
  nextId,
  pageHeader,
  searchBox,
  submitDialog,
  toast,
} from "./ui.js";
import { renderLifecycleTab } from "./lifecycle.js";
import { bucketInfo, bucketInfos, renderBucketSettings, saveUnlessLockedOut, usageSummary } from "./management.js";

const BASE = "/console/buckets";
const API = "/console/api/buckets";
export const PART_SIZE = 16 * 1024 * 1024; // files larger than this go up as multipart, in slices of this size

function bucketApi(bucket, rest = "") {
  return `${API}/${encodeURIComponent(bucket)}${rest}`;
}

// --- bucket list ------------------------------------------------------------------------------
export async function renderBuckets(ctx) {
  const { main, navigate } = ctx;
  let buckets = [];
  let infos = new Map();
  let infoError = null; // why usage is not shown (ListBucketInfo refused)
  const createBtn = h("button", { type: "button", class: "button primary" }, "Create Bucket");
  createBtn.addEventListener("click", () => openCreateBucket(navigate));
  const page = listPage(main, {
    title: "Buckets",
    action: createBtn,
    intro: "Buckets hold objects. Each lives in one availability zone; versioning keeps every version of an object.",
    searchLabel: "Search by name",
    draw,
    loading: "Loading buckets…",
  });
  function draw() {
    page.show(buckets, {
      nouns: ["bucket", "buckets"],
      empty: ["No buckets yet", "Create a bucket to start storing objects."],
      label: "Buckets",
      columns: [{ title: "Name", width: "38%" }, { title: "Zone", width: "15%" }, { title: "Usage", width: "22%" }, { title: "Created", width: "20%" }, { title: "Menu", actions: true }],
      row: (b) => {
        const href = `${BASE}/${encodeURIComponent(b.name)}`;
        const info = infos.get(b.name);
        const usage = info ? cellText(usageSummary(info.usage)) : h("span", { class: "cell muted", title: infoError ? `Usage is unavailable: ${infoError}` : "" }, "—");
        return h(
          "tr",
          { dataset: { bucket: b.name } },
          h("td", {}, h("a", { href, "data-link": true, class: "cell", title: b.name }, b.name)),
          h("td", {}, cellText(b.zone)),
          h("td", { "data-testid": "bucket-usage" }, usage),
          h("td", {}, cellText(formatDate(b.creationDate))),
          actionsCell(`Actions for bucket ${b.name}`, [
            { label: "Open", onSelect: () => navigate(href) },
            { label: "Delete…", danger: true, onSelect: () => deleteBucket(b.name, reload) },
          ]),
        );
      },
    });
  }
  async function reload() {
    try {
      const [listed, usage] = await Promise.allSettled([api("GET", API), bucketInfos()]);
      if (listed.status === "rejected") throw listed.reason;
      buckets = listed.value.buckets || [];
      infos = usage.status === "fulfilled" ? usage.value : new Map();
      infoError = usage.status === "rejected" ? usage.reason.message : null;
      draw();
    } catch (err) {
      page.failed("The buckets could not be listed.", err);
    }
  }
  await reload();
}

function openCreateBucket(navigate) {
  const info = session.info || {};
  const name = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "63" });
  const nameField = field({ label: "Bucket name", input: name, hint: "3-63 characters: lower-case letters, digits, '-' and '.'. Names are unique across the whole store." });
  const zone = h("select", {}, (info.zones || []).map((z) => h("option", { value: z, selected: z === info.defaultZone }, z)));
  const zoneField = field({ label: "Availability zone", input: zone });
  const versioningId = nextId("versioning");
  const versioning = h("input", { type: "checkbox", role: "switch", id: versioningId });
  const { dlg, submit: create, errorBox, showError } = submitDialog({
    onSubmit: submit,
    title: "Create Bucket",
    body: [
      nameField.wrap,
      zoneField.wrap,
      h("div", { class: "field" }, h("label", { class: "switch", for: versioningId }, versioning, "Enable versioning"), h("div", { class: "hint" }, "Decide now: versioning keeps every version of every object.")),
    ],
    submitLabel: "Create",
    initialFocus: name,
  });
  async function submit() {
    errorBox.hidden = true;
    const bucket = nameField.required("A bucket needs a name.");
    if (!bucket) return;
    create.disabled = true;
    try {
      await api("POST", API, { name: bucket, zone: zone.value, versioning: versioning.checked });
      dlg.close();
      toast(`Bucket ${bucket} created`);
      navigate(`${BASE}/${encodeURIComponent(bucket)}`);
    } catch (err) {
      create.disabled = false;
      if (/BucketName|bucket name/i.test(err.message)) nameField.setError(err.message);
      else showError(err.message);
    }
  }
}

function deleteBucket(bucket, onDone) {
  confirmDialog({
    title: "Delete bucket",
    message: [h("p", {}, "Delete the bucket ", h("code", {}, bucket), "? Only an empty bucket can be deleted.")],
    typed: bucket,
    typedLabel: `Type the bucket name ${bucket} to confirm`,
    confirmLabel: "Delete bucket",
    action: async () => {
      await api("DELETE", bucketApi(bucket));
      toast(`Bucket ${bucket} deleted`);
      onDone();
    },
  });
}

// --- one bucket -------------------------------------------------------------------------------
export async function renderBucket(ctx, bucket) {
  const { main, navigate } = ctx;
  const params = new URLSearchParams(location.search);
  const prefix = params.get("prefix") || "";
  const tab = ["policy", "settings", "lifecycle"].includes(params.get("tab")) ? params.get("tab") : "objects";
  const here = (p, t = "objects") => `${BASE}/${encodeURIComponent(bucket)}${q({ prefix: p, tab: t === "objects" ? "" : t })}`;

  const crumbs = [h("li", {}, h("a", { href: BASE, "data-link": true }, "Buckets")), h("li", {}, h("a", { href: here(""), "data-link": true, title: bucket }, bucket))];
  let acc = "";
  for (const part of prefix.split("/").filter((p, i, all) => p !== "" || i < all.length - 1)) {
    acc += `${part}/`;
    crumbs.push(h("li", {}, h("a", { href: here(acc), "data-link": true, title: part }, part || "(empty)")));
  }
  const last = crumbs[crumbs.length - 1].firstChild;
  last.setAttribute("aria-current", "page");

  const meta = h("div", { class: "meta", "aria-live": "polite" }, h("span", {}, "Loading bucket details…"));
  const deleteBtn = h("button", { type: "button", class: "button" }, "Delete bucket");
  deleteBtn.addEventListener("click", () => deleteBucket(bucket, () => navigate(BASE)));
  const tabObjects = h("a", { role: "tab", href: here(prefix), "data-link": true, "aria-selected": String(tab === "objects"), class: "tab" }, "Objects");
  const tabSettings = h("a", { role: "tab", href: here("", "settings"), "data-link": true, "aria-selected": String(tab === "settings"), class: "tab" }, "Settings");
  const tabPolicy = h("a", { role: "tab", href: here("", "policy"), "data-link": true, "aria-selected": String(tab === "policy"), class: "tab" }, "Bucket policy");
  const tabLifecycle = h("a", { role: "tab", href: here("", "lifecycle"), "data-link": true, "aria-selected": String(tab === "lifecycle"), class: "tab" }, "Lifecycle");
  const panel = h("div", { role: "tabpanel" });
  main.append(
    h("nav", { "aria-label": "Breadcrumb" }, h("ol", { class: "breadcrumbs" }, crumbs)),
    pageHeader(bucket, deleteBtn),
    meta,
    h("div", { class: "tabs", role: "tablist", "aria-label": "Bucket" }, tabObjects, tabSettings, tabPolicy, tabLifecycle),
    panel,
  );
  loadMeta(bucket, meta);
  if (tab === "policy") await renderPolicyTab(bucket, panel);
  else if (tab === "lifecycle") await renderLifecycleTab(bucket, panel);
  else if (tab === "settings") await renderBucketSettings(bucket, panel, () => loadMeta(bucket, meta));
  else await renderObjects(ctx, bucket, prefix, panel, here);
}

async function loadMeta(bucket, meta) {
  try {
    // Zone and versioning from S3; usage from the control plane (GetBucketInfo), if allowed.
    const [details, usage] = await Promise.allSettled([api("GET", bucketApi(bucket)), bucketInfo(bucket)]);
    if (details.status === "rejected") throw details.reason;
    const info = details.value;
    clear(
      meta,
      h("span", {}, "Zone ", h("strong", {}, info.zone || "—")),
      h("span", {}, "Versioning ", h("span", { class: `badge ${info.versioning}` }, info.versioning)),
      usage.status === "fulfilled"
        ? h("span", { "data-testid": "usage" }, "Usage ", h("strong", {}, usageSummary(usage.value.usage)))
        : h("span", { "data-testid": "usage", title: usage.reason.message }, "Usage unavailable"),
    );
  } catch (err) {
    clear(meta, h("span", { role: "alert", class: "field-error" }, `Bucket details are unavailable: ${err.message}`));
  }
}

async function renderObjects(ctx, bucket, prefix, panel, here) {
  const { navigate } = ctx;
  // A plain button opens the browser's file chooser; the file input itself is hidden and
  // out of the accessibility tree, so there is exactly one "Upload files" control.
  const fileInput = h("input", { type: "file", multiple: true, hidden: true });
  const uploadLabel = h("button", { type: "button", class: "button primary" }, "Upload files");
  uploadLabel.addEventListener("click", () => fileInput.click());
  const folderBtn = h("button", { type: "button", class: "button" }, "Create folder");
  const filter = searchBox("Filter this folder by name", () => draw());
  const uploads = h("div", { class: "uploads", "aria-label": "Uploads" });
  const body = h("div", { class: "table-wrap" }, h("p", { class: "loading empty" }, "Loading objects…"));
  const more = h("button", { type: "button", class: "button load-more", hidden: true }, "Load more");
  panel.append(h("div", { class: "toolbar" }, filter.wrap, h("span", { class: "spacer" }), folderBtn, fileInput, uploadLabel), uploads, body, more);

  let folders = [];
  let objects = [];
  let nextToken = null;

  fileInput.addEventListener("change", async () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    for (const file of files) await uploadOne(bucket, prefix + file.name, file, uploads);
    await reload();
    loadMeta(bucket, document.querySelector(".meta"));
  });
  folderBtn.addEventListener("click", () => createFolder(bucket, prefix, () => reload()));
  more.addEventListener("click", () => load(nextToken));

  function draw() {
    const needle = filter.input.value.trim().toLowerCase();
    const rel = (k) => k.slice(prefix.length);
    const shownFolders = folders.filter((f) => !needle || rel(f).toLowerCase().includes(needle));
    const shownObjects = objects.filter((o) => o.key !== prefix && (!needle || rel(o.key).toLowerCase().includes(needle)));
    if (!shownFolders.length && !shownObjects.length) {
      clear(body, needle ? emptyState("Nothing matches", `No object or folder here matches “${filter.input.value}”.`) : emptyState(prefix ? "This folder is empty" : "This bucket is empty", "Upload files or create a folder."));
      return;
    }
    const rows = [
      ...shownFolders.map((f) =>
        h(
          "tr",
          { dataset: { prefix: f } },
          h("td", {}, h("a", { href: here(f), "data-link": true, class: "cell folder-icon", title: f }, rel(f))),
          h("td", { class: "num" }, "—"),
          h("td", {}, ""),
          actionsCell(`Actions for folder ${rel(f)}`, [{ label: "Open", onSelect: () => navigate(here(f)) }]),
        ),
      ),
      ...shownObjects.map((o) =>
        h(
          "tr",
          { dataset: { key: o.key } },
          h("td", {}, h("button", { type: "button", class: "linklike file-icon", title: `Download ${o.key}`, onclick: () => download(bucket, o.key) }, rel(o.key))),
          h("td", { class: "num" }, cellText(formatBytes(o.size))),
          h("td", {}, cellText(formatDate(o.lastModified))),
          actionsCell(`Actions for object ${rel(o.key)}`, [
            { label: "Download", onSelect: () => download(bucket, o.key) },
            { label: "Delete…", danger: true, onSelect: () => deleteObject(bucket, o.key, () => reload()) },
          ]),
        ),
      ),
    ];
    clear(
      body,
      dataTable({
        label: `Objects in ${bucket}/${prefix}`,
        columns: [
          { title: "Name", width: "58%" },
          { title: "Size", width: "14%", class: "num" },
          { title: "Last modified", width: "22%" },
          { title: "Menu", actions: true },
        ],
        rows,
      }),
    );
  }

  async function load(token) {
    try {
      const page = await api("GET", bucketApi(bucket, `/objects${q({ prefix, token })}`));
      if (!token) {
        folders = [];
        objects = [];
      }
      folders.push(...page.folders);
      objects.push(...page.objects);
      nextToken = page.nextToken;
      more.hidden = !nextToken;
      draw();
    } catch (err) {
      more.hidden = true;
      clear(body, errorState("The objects could not be listed.", err));
    }
  }
  async function reload() {
    await load(null);
  }
  await reload();
}

// Upload one file, with a progress row. Small files go up in one PUT; larger ones as a
// multipart upload, one PART_SIZE slice per UploadPart, aborted if any part fails.
async function uploadOne(bucket, key, file, host) {
  const bar = h("progress", { max: String(Math.max(file.size, 1)), value: "0", "aria-label": `Upload progress of ${file.name}` });
  const status = h("span", { class: "status" }, "0%");
  const row = h("div", { class: "upload", dataset: { uploadKey: key } }, cellText(key), bar, status);
  host.append(row);
  const progress = (sent) => {
    bar.value = sent;
    status.textContent = `${Math.floor((100 * sent) / Math.max(file.size, 1))}%`;
  };
  try {
    if (file.size <= PART_SIZE) {
      await upload("PUT", bucketApi(bucket, `/object${q({ key })}`), file, progress);
    } else {
      const { uploadId } = await api("POST", bucketApi(bucket, `/multipart${q({ key, contentType: file.type })}`));
      try {
        const parts = [];
        for (let offset = 0, number = 1; offset < file.size; offset += PART_SIZE, number += 1) {
          const slice = file.slice(offset, Math.min(offset + PART_SIZE, file.size));
          const part = await upload("PUT", bucketApi(bucket, `/multipart/part${q({ key, uploadId, partNumber: number })}`), slice, (sent) => progress(offset + sent));
          parts.push({ partNumber: number, etag: part.etag });
        }
        await api("POST", bucketApi(bucket, `/multipart/complete${q({ key, uploadId })}`), { parts });
      } catch (err) {
        await api("DELETE", bucketApi(bucket, `/multipart${q({ key, uploadId })}`)).catch(() => {});
        throw err;
      }
    }
    progress(file.size);
    status.textContent = "Done";
    toast(`Uploaded ${key}`);
    setTimeout(() => row.remove(), 4000);
  } catch (err) {
    row.classList.add("failed");
    status.textContent = "Failed";
    row.append(h("div", { class: "message", role: "alert" }, `${key}: ${err.message}`));
    const dismiss = h("button", { type: "button", class: "button small dismiss" }, "Dismiss");
    dismiss.addEventListener("click", () => row.remove());
    row.append(dismiss);
  }
}

async function download(bucket, key) {
  // Ask first, so a refusal is shown here rather than saved as a file; then let the
  // browser stream the download to disk.
  try {
    await api("GET", bucketApi(bucket, `/object-info${q({ key })}`));
  } catch (err) {
    toast(`Cannot download ${key}: ${err.message}`, "error");
    return;
  }
  const a = h("a", { href: bucketApi(bucket, `/object${q({ key })}`), download: key.split("/").pop() || "download", hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

function deleteObject(bucket, key, onDone) {
  confirmDialog({
    title: "Delete object",
    message: [h("p", {}, "Delete ", h("code", {}, key), "?")],
    confirmLabel: "Delete",
    action: async () => {
      await api("DELETE", bucketApi(bucket, `/object${q({ key })}`));
      toast(`Deleted ${key}`);
      onDone();
    },
  });
}

function createFolder(bucket, prefix, onDone) {
  const name = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const nameField = field({ label: "Folder name", input: name, hint: `Creates the empty object ${prefix}<name>/ that marks a folder.` });
  const { dlg, submit: create, showError } = submitDialog({
    onSubmit: submit,
    title: "Create folder",
    body: [nameField.wrap],
    submitLabel: "Create folder",
    initialFocus: name,
  });
  async function submit() {
    const value = name.value.trim().replace(/^\/+|\/+$/g, "");
    if (!value) {
      nameField.setError("A folder needs a name.");
      return;
    }
    create.disabled = true;
    try {
      await upload("PUT", bucketApi(bucket, `/object${q({ key: `${prefix}${value}/` })}`), new Blob([]), () => {});
      dlg.close();
      toast(`Folder ${value}/ created`);
      onDone();
    } catch (err) {
      create.disabled = false;
      showError(err.message);
    }
  }
}

// --- bucket policy ------------------------------------------------------------------------------
function examplePolicy(bucket) {
  return JSON.stringify(
    {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "AllowReadToEveryoneInTheOrg",
          Effect: "Allow",
          Principal: { CW: "*" },
          Action: ["s3:GetObject", "s3:ListBucket"],
          Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`],
        },
      ],
    },
    null,
    2,
  );
}

async function renderPolicyTab(bucket, panel) {
  const area = h("textarea", { class: "policy-editor", spellcheck: "false", rows: "18", id: nextId("policy") });
  const policyField = field({ label: "Bucket policy (JSON)", input: area, hint: "AWS-style policy: Version, Statement with Effect, Principal, Action, Resource and optional Condition." });
  const status = h("p", { class: "hint", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "button primary" }, "Save policy");
  const remove = h("button", { type: "button", class: "button" }, "Delete policy");
  const example = h("button", { type: "button", class: "button" }, "Insert example");
  const form = h("form", { novalidate: true }, status, policyField.wrap, h("div", { class: "editor-foot" }, example, remove, save));
  clear(panel, h("p", { class: "loading" }, "Loading the bucket policy…"));
  let current = null;
  let unreadable = false; // the policy denies its reader s3:GetBucketPolicy
  try {
    current = (await api("GET", bucketApi(bucket, "/policy"))).policy;
  } catch (err) {
    if (err.status !== 403) {
      clear(panel, errorState("The bucket policy could not be read.", err));
      return;
    }
    unreadable = true;
  }
  function showState() {
    if (unreadable) {
      status.textContent = "This bucket has a policy that does not let you read it (s3:GetBucketPolicy). You can still replace it: s3:PutBucketPolicy is decided by organization policies alone.";
    } else {
      status.textContent = current ? "This bucket has a policy." : "This bucket has no policy: organization policies alone decide access.";
    }
    remove.disabled = !current && !unreadable;
  }
  area.value = current ? prettyJson(current) : "";
  showState();
  clear(panel, form);
  example.addEventListener("click", () => {
    area.value = examplePolicy(bucket);
    area.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    policyField.setError("");
    try {
      JSON.parse(area.value);
    } catch (err) {
      policyField.setError(`The policy is not valid JSON: ${err.message}`);
      area.focus();
      return;
    }
    save.disabled = true;
    const text = area.value;
    try {
      // Warns first when the policy would lock the signed-in user out of the bucket.
      await saveUnlessLockedOut(bucket, text, async () => {
        await api("PUT", bucketApi(bucket, "/policy"), { policy: text });
        current = text;
        unreadable = false;
        showState();
        toast("Bucket policy saved");
      });
    } catch (err) {
      policyField.setError((err.fields || {}).policy || err.message);
    } finally {
      save.disabled = false;
    }
  });
  remove.addEventListener("click", () =>
    confirmDialog({
      title: "Delete bucket policy",
      message: `Delete the policy of ${bucket}? Access is then decided by organization policies alone.`,
      confirmLabel: "Delete policy",
      action: async () => {
        await api("DELETE", bucketApi(bucket, "/policy"));
        current = null;
        unreadable = false;
        area.value = "";
        showState();
        toast("Bucket policy deleted");
      },
    }),
  );
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
