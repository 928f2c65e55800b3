// Functions: every query, mutation and action (internal ones too), run with JSON5 arguments
// as no user or as a chosen identity; the result, the log lines and the time it took.

import { errorBox, fill, h, submitOnCtrlEnter } from "./dom.js";
import { format, parse } from "./values.js";
import { validatorText } from "./view_schema.js";

const KIND = { query: "Q", mutation: "M", action: "A" };

export function mount(root, ctx, param) {
  const list = h("ul", { class: "fn-list" });
  const search = h("input", { type: "search", placeholder: "Filter functions", "aria-label": "Filter functions" });
  const detail = h("div", { class: "fn-detail" }, h("p", {}, "Pick a function."));
  const refresh = h("button", { type: "button", onclick: () => load() }, "Reload list");
  fill(root, h("section", { class: "functions" },
    h("nav", { class: "fn-nav", "aria-label": "Functions" }, h("h2", {}, "Functions"), search, refresh, list),
    detail));
  let functions = [];
  let selected = param || null;
  const remembered = new Map(); // path -> args text

  search.addEventListener("input", renderList);

  async function load() {
    const response = await ctx.admin("/api/_pyconvex/functions");
    if (!response.ok) {
      fill(detail, h("p", { class: "error", role: "alert" }, `Could not list the functions: ${response.status}`));
      return;
    }
    functions = (await response.json()).functions;
    renderList();
    if (selected) show(selected);
  }

  function renderList() {
    const q = search.value.trim().toLowerCase();
    fill(list, functions.filter((f) => f.path.toLowerCase().includes(q)).map((f) => h("li", {},
      h("a", { href: `#/functions/${encodeURIComponent(f.path)}`, "aria-current": f.path === selected ? "page" : null },
        h("span", { class: `kind kind-${f.kind}`, title: f.kind }, KIND[f.kind] || "?"),
        h("span", { class: "name" }, f.path),
        f.visibility === "internal" ? h("span", { class: "badge" }, "internal") : null))));
    if (!functions.length) fill(list, h("li", { class: "empty" }, "No functions in convex/ yet."));
  }

  function show(path) {
    selected = path;
    renderList();
    const fn = functions.find((f) => f.path === path);
    if (!fn) {
      fill(detail, h("p", {}, `No function ${path}.`));
      return;
    }
    const args = submitOnCtrlEnter(h("textarea", { id: "fn-args", class: "code", rows: 8, spellcheck: "false" }), run);
    args.value = remembered.get(path) || "{}";
    args.addEventListener("input", () => remembered.set(path, args.value));
    const asUser = h("input", { type: "checkbox", id: "fn-as-user" });
    const identity = h("textarea", { id: "fn-identity", class: "code", rows: 3, spellcheck: "false", disabled: true },
      '{ subject: "user1", name: "Ann" }');
    asUser.addEventListener("change", () => { identity.disabled = !asUser.checked; });
    const runButton = h("button", { type: "button", class: "primary", onclick: run }, `Run ${fn.kind}`);
    const error = errorBox();
    const output = h("div", { class: "fn-output", "aria-live": "polite" });
    fill(detail,
      h("h2", {}, fn.path),
      h("p", {}, h("span", { class: `kind kind-${fn.kind}` }, fn.kind), " ",
        fn.visibility === "internal" ? "internal: clients cannot call it; the admin key can." : "public"),
      h("details", {}, h("summary", {}, "Arguments and result types"),
        h("pre", { class: "code" }, `args: ${validatorText(fn.args)}\nreturns: ${fn.returns ? validatorText(fn.returns) : "(not declared)"}`)),
      h("label", { for: "fn-args", class: "field-label" }, "Arguments (JSON5)"), args,
      h("div", { class: "identity" },
        h("label", { class: "inline" }, asUser, " Run as a user"),
        h("label", { for: "fn-identity", class: "field-label" }, "Identity claims (JSON5: subject, name, email, …)"),
        identity),
      h("div", { class: "buttons" }, runButton, h("span", { class: "hint" }, "Ctrl+Enter runs")),
      error, output);

    async function run() {
      error.show("");
      let argsValue;
      let who = null;
      try {
        argsValue = parse(args.value || "{}");
        if (asUser.checked) who = JSON.parse(JSON.stringify(parse(identity.value)));
      } catch (e) {
        error.show(e.message);
        return;
      }
      let auth = `Convex ${ctx.session.adminKey}`;
      if (who) auth += ":" + btoa(unescape(encodeURIComponent(JSON.stringify(who))));
      runButton.disabled = true;
      const started = performance.now();
      try {
        const response = await fetch("/api/function", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: auth },
          body: JSON.stringify({ path: fn.path, args: argsValue, format: "convex_encoded_json" }),
        });
        const took = performance.now() - started;
        const body = await response.json();
        renderResult(body, took, response.ok);
      } catch (e) {
        error.show(e.message);
      } finally {
        runButton.disabled = false;
      }
    }

    function renderResult(body, took, ok) {
      const failed = !ok || body.status !== "success";
      fill(output,
        h("p", { class: failed ? "outcome failure" : "outcome success" },
          failed ? "Failed" : "Succeeded", ` in ${took.toFixed(1)} ms`, who() ),
        failed
          ? h("pre", { class: "code error-text", id: "fn-result" }, body.errorMessage || body.message || JSON.stringify(body),
            body.errorData !== undefined ? `\n\nerrorData: ${format(body.errorData)}` : "")
          : h("pre", { class: "code", id: "fn-result" }, format(body.value === undefined ? null : body.value)),
        h("h3", {}, "Log lines"),
        (body.logLines || []).length
          ? h("pre", { class: "code logs", id: "fn-logs" }, body.logLines.join("\n"))
          : h("p", { class: "hint", id: "fn-logs" }, "None."));
    }

    function who() {
      return asUser.checked ? " as a user" : "";
    }
  }

  load();
  return {
    update(path) { if (path) show(path); },
  };
}
