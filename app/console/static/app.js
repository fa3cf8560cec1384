// The shell: sign in with a key, ask the API what it may do (GET /v1/auth/me), show the
// screens its scopes allow, route by hash.

import { clearKey, getKey, setKey, whoAmI } from "./api.js";
import { h, showError } from "./ui.js";
import playground from "./playground.js";
import catalogue from "./catalogue.js";
import jobs from "./jobs.js";
import models from "./models.js";
import rules from "./rules.js";
import analytics from "./analytics.js";
import experiments from "./experiments.js";
import queue from "./queue.js";
import keys from "./keys.js";

// Each screen: {id, title, scope, init(section, ctx)}; `scope` is what its API calls need.
const SCREENS = [playground, catalogue, jobs, models, rules, analytics, experiments, queue, keys];
const $ = (id) => document.getElementById(id);
let ctx = null;

function allowedScreens() {
  return SCREENS.filter((s) => ctx.has(s.scope));
}

function show(id) {
  const screens = allowedScreens();
  const screen = screens.find((s) => s.id === id) ?? screens[0];
  for (const s of screens) {
    const section = $(`screen-${s.id}`);
    const active = s === screen;
    section.hidden = !active;
    $(`tab-${s.id}`).setAttribute("aria-current", active ? "page" : "false");
    if (active && !section.dataset.ready) {
      section.dataset.ready = "1";
      s.init(section, ctx);
    } else if (active) {
      s.shown?.();
    }
  }
}

function layout() {
  const screens = allowedScreens();
  $("tabs").replaceChildren(
    ...screens.map((s) => h("a", { id: `tab-${s.id}`, href: `#${s.id}`, class: "tab" }, s.title)),
  );
  $("screens").replaceChildren(
    ...screens.map((s) => h("section", { id: `screen-${s.id}`, class: "screen", hidden: true })),
  );
  // The key's own scopes (admin stands for all of them); with auth off, there is no key.
  const { key } = ctx.me;
  const who = key ? `${key.name} · scopes: ${key.scopes.join(", ")}` : "auth off · every scope";
  $("session").replaceChildren(
    h("span", { id: "session-key", title: key ? `key ${key.key_id}` : "the API asks for no key" }, who),
    h("button", { id: "signout", type: "button", onclick: signOut }, "Sign out"),
  );
  if (!screens.length) {
    $("screens").append(h("p", { class: "error" }, "This key has none of the scopes the console uses (recommend, catalog, admin)."));
  }
  show(location.hash.slice(1));
}

async function signIn(key) {
  setKey(key);
  try {
    const me = await whoAmI();
    const scopes = new Set(me.scopes);
    ctx = { me, scopes, has: (scope) => scopes.has(scope) };
  } catch (e) {
    clearKey();
    throw e;
  }
  $("signin").hidden = true;
  layout();
}

function signOut() {
  clearKey();
  ctx = null;
  $("tabs").replaceChildren();
  $("screens").replaceChildren();
  $("session").replaceChildren();
  $("signin-key").value = "";
  $("signin").hidden = false;
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError($("signin-error"), null);
  try {
    await signIn($("signin-key").value.trim());
  } catch (e) {
    showError($("signin-error"), e);
  }
});

window.addEventListener("hashchange", () => ctx && show(location.hash.slice(1)));

const saved = getKey();
if (saved) {
  signIn(saved).catch((e) => {
    signOut();
    showError($("signin-error"), e);
  });
} else {
  signOut();
}
