// The dashboard's entry point: reads the admin key the sign-in cookie gives, opens the sync
// connection, and shows the section the URL's #/path names.

import { fill, h } from "./dom.js";
import { SyncClient } from "./sync.js";
import * as data from "./view_data.js";
import * as env from "./view_env.js";
import * as files from "./view_files.js";
import * as functions from "./view_functions.js";
import * as logs from "./view_logs.js";
import * as schedules from "./view_schedules.js";
import * as schema from "./view_schema.js";
import * as sql from "./view_sql.js";

const VIEWS = { data, schema, functions, logs, schedules, files, env, sql };
const STATUS = {
  connecting: "connecting…",
  connected: "live",
  reconnecting: "reconnecting…",
  refused: "admin key refused",
  error: "error",
};

async function start() {
  const main = document.getElementById("main");
  const response = await fetch("/dashboard/session", { credentials: "same-origin" });
  if (!response.ok) {
    fill(main, h("p", { class: "error", role: "alert" },
      "This browser is not signed in to the dashboard: open the sign-in link pyconvex dev printed."));
    return;
  }
  const session = await response.json();
  const status = document.getElementById("status");
  document.getElementById("deployment").textContent = location.host;
  const client = new SyncClient(location.origin, session.adminKey, (state, detail) => {
    status.textContent = STATUS[state] + (detail ? `: ${detail}` : "");
    status.dataset.state = state;
  });
  const ctx = {
    client,
    session,
    /** fetch() an admin route of this deployment (Authorization: Convex <admin key>). */
    admin(path, options = {}) {
      const headers = { Authorization: `Convex ${session.adminKey}`, ...(options.headers || {}) };
      return fetch(path, { ...options, headers });
    },
  };
  let current = null;
  let currentName = null;

  function route() {
    const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
    const viewName = VIEWS[name] ? name : "data";
    const param = rest.map(decodeURIComponent).join("/");
    for (const link of document.querySelectorAll(".nav a")) {
      if (link.getAttribute("href") === `#/${viewName}`) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (current && currentName === viewName && current.update) {
      current.update(param);
      return;
    }
    if (current && current.unmount) current.unmount();
    fill(main);
    currentName = viewName;
    document.title = `${viewName[0].toUpperCase() + viewName.slice(1)} · pyconvex dashboard`;
    current = VIEWS[viewName].mount(main, ctx, param) || null;
  }

  window.addEventListener("hashchange", route);
  route();
}

start();
