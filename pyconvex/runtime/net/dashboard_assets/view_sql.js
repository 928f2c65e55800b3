// SQL: one read-only SELECT over the tables' SQL views (pyconvex sql), answered as a table.
// The route answers in JSON lines (data_routes.py): columns, rows in batches, the end.

import { errorBox, fill, h, submitOnCtrlEnter } from "./dom.js";

const MAX_ROWS = 1000;
let lastQuery = "";

export function mount(root, ctx) {
  const query = submitOnCtrlEnter(h("textarea", { id: "sql-query", class: "code", rows: 6, spellcheck: "false" }), run);
  const button = h("button", { type: "button", class: "primary", onclick: run }, "Run");
  const error = errorBox();
  const output = h("div", { class: "sql-output", "aria-live": "polite" });
  fill(root, h("section", { class: "sql" },
    h("h2", {}, "SQL"),
    h("p", { class: "hint" }, "One read-only SELECT (DuckDB) over a view per table, at one snapshot. Ctrl+Enter runs."),
    h("label", { for: "sql-query", class: "field-label" }, "Query"), query,
    h("div", { class: "buttons" }, button), error, output));

  query.value = lastQuery;
  if (!lastQuery) suggest();

  function suggest() {
    // A first query over the first table, so there is something to run.
    const stop = ctx.client.subscribe("_system/dashboard:tables", {}, ({ value }) => {
      stop();
      const first = (value || []).find((t) => !t.system);
      if (first && !query.value) query.value = `SELECT * FROM "${first.name}" LIMIT 20`;
    });
  }

  async function run() {
    lastQuery = query.value;
    error.show("");
    button.disabled = true;
    const started = performance.now();
    try {
      const response = await ctx.admin("/api/_pyconvex/sql", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ query: query.value, maxRows: MAX_ROWS }),
      });
      if (response.status === 404) {
        error.show("This deployment does not answer SQL queries (no SQL route).");
        return;
      }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        error.show(body.message || `The query failed (${response.status}).`);
        return;
      }
      // The answer streams as JSON lines: columns, batches of rows, then the end (or an error).
      const result = { columns: [], types: [], rows: [], truncated: false };
      for (const line of (await response.text()).split("\n")) {
        if (!line) continue;
        const part = JSON.parse(line);
        if (part.type === "columns") Object.assign(result, { columns: part.columns, types: part.types });
        else if (part.type === "rows") result.rows.push(...part.rows);
        else if (part.type === "end") result.truncated = part.truncated;
        else if (part.type === "error") {
          error.show(part.message);
          return;
        }
      }
      render(result, performance.now() - started);
    } catch (e) {
      error.show(e.message);
    } finally {
      button.disabled = false;
    }
  }

  function render(result, took) {
    const text = (v) => (v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v));
    fill(output,
      h("p", { class: "hint" }, `${result.rows.length.toLocaleString()} row${result.rows.length === 1 ? "" : "s"} in ${took.toFixed(0)} ms`
        + (result.truncated ? ` (the first ${MAX_ROWS.toLocaleString()} shown)` : "")),
      h("div", { class: "grid-wrap" }, h("table", { class: "grid", id: "sql-result" },
        h("thead", {}, h("tr", {}, result.columns.map((c, i) => h("th", { scope: "col" }, c,
          h("span", { class: "type" }, result.types ? result.types[i] : ""))))),
        h("tbody", {}, result.rows.map((row) => h("tr", {}, row.map((v) => h("td", { class: v === null ? "missing" : null }, text(v)))))))));
  }
}
