// The console's entry point: session, navigation and the sign-in view.

import { api, session } from "./api.js";
import { renderBucket, renderBuckets } from "./buckets.js";
import { renderFederation } from "./federation.js";
import { renderKeys } from "./keys.js";
import { renderOrgSettings } from "./management.js";
import { renderPolicies, renderPolicyEditor } from "./policies.js";
import { clear, field, h, toast } from "./ui.js";

const BASE = "/console";
const main = document.getElementById("main");
let notice = "";

// --- navigation ---------------------------------------------------------------------------
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  render();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", () => render());

function setSection(section, title) {
  for (const a of document.querySelectorAll("#sidenav a[data-section]")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = title ? `${title} · Coffer console` : "Coffer console";
}

function showFrame(signedIn) {
  document.getElementById("sidenav").hidden = !signedIn;
  document.getElementById("account").hidden = !signedIn;
  if (signedIn) {
    const user = session.info.user;
    const name = document.getElementById("account-name");
    name.textContent = `${user.name} · ${user.principalName}`;
    name.title = `${user.name} (${user.principalName}), organization ${user.orgId}`;
  }
}

// Routes: path below /console -> view. Views get a fresh <main> and may be async.
async function render() {
  const path = location.pathname.replace(/\/+$/, "");
  const rest = path.startsWith(BASE) ? path.slice(BASE.length) : path;
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  if (!session.info && parts[0] !== "sign-in") {
    try {
      session.info = await api("GET", `${BASE}/api/session`, undefined, { signIn: true });
    } catch {
      const back = location.pathname + location.search;
      navigate(`${BASE}/sign-in${back && !back.endsWith("/sign-in") ? `?next=${encodeURIComponent(back)}` : ""}`, { replace: true });
      return;
    }
  }
  if (parts[0] === "sign-in") {
    if (session.info) {
      navigate(`${BASE}/access-keys`, { replace: true });
      return;
    }
    showFrame(false);
    setSection("", "Sign in");
    renderSignIn();
    return;
  }
  showFrame(true);
  const view = clear(main);
  const ctx = { main: view, navigate, session: session.info };
  const [section, ...args] = parts;
  if (!section || section === "access-keys") {
    setSection("access-keys", "Access Keys");
    await renderKeys(ctx);
  } else if (section === "access-policies") {
    setSection("access-policies", "Organization Access Policies");
    if (args[0] === "new") await renderPolicyEditor(ctx, null);
    else if (args[0] === "edit" && args[1]) await renderPolicyEditor(ctx, args[1]);
    else await renderPolicies(ctx);
  } else if (section === "buckets") {
    setSection("buckets", args[0] ? args[0] : "Buckets");
    if (args[0]) await renderBucket(ctx, args[0]);
    else await renderBuckets(ctx);
  } else if (section === "organization-settings") {
    setSection("organization-settings", "Organization Settings");
    await renderOrgSettings(ctx);
  } else if (section === "workload-federation") {
    setSection("workload-federation", "Workload Federation");
    await renderFederation(ctx);
  } else {
    setSection("", "Not found");
    view.append(
      h("h1", {}, "Page not found"),
      h("p", {}, "There is no console page at this address. ", h("a", { href: `${BASE}/access-keys`, "data-link": true }, "Go to Access Keys"), "."),
    );
  }
}

// --- sign-in and sign-out -------------------------------------------------------------------
function renderSignIn() {
  const input = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false", class: "mono" });
  const tokenField = field({
    label: "API access token",
    input,
    hint: [
      "An API access token of your user, e.g. from ",
      h("code", {}, "coffer admin token create --user NAME"),
      ". The console starts its own session with it and never stores the token you paste.",
    ],
  });
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", novalidate: true, "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Coffer"),
    h("p", { class: "lead" }, "Manage access keys, policies and buckets of your organization."),
    notice ? h("div", { class: "notice", role: "status" }, notice) : null,
    tokenField.wrap,
    h("div", { class: "editor-foot" }, submit),
  );
  notice = "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = tokenField.required("Paste an API access token.");
    if (!token) return;
    submit.disabled = true;
    try {
      session.info = await api("POST", `${BASE}/api/session`, { token }, { signIn: true });
      input.value = "";
      const next = new URLSearchParams(location.search).get("next");
      const safe = next && next.startsWith(`${BASE}/`) && !next.startsWith("//") && !next.includes("sign-in") ? next : `${BASE}/access-keys`;
      navigate(safe, { replace: true });
    } catch (err) {
      tokenField.setError(err.message);
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  clear(main, form);
  input.focus();
}

function sessionEnded(message) {
  if (!session.info) return;
  session.info = null;
  notice = message;
  navigate(`${BASE}/sign-in`, { replace: true });
}
session.onEnded = sessionEnded;

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("DELETE", `${BASE}/api/session`);
  } catch (err) {
    if (err.status !== 401) {
      toast(`Sign-out failed: ${err.message}`, "error");
      return;
    }
  }
  session.info = null;
  notice = "You have signed out.";
  navigate(`${BASE}/sign-in`, { replace: true });
});

render();
