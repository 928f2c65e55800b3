// Schema: each table's document validator and its indexes (live: a push shows at once).

import { fill, h } from "./dom.js";
import { format } from "./values.js";

/** A validator's JSON (schema.to_json()) as the v.* call that made it. */
export function validatorText(json, depth = 0) {
  if (!json) return "v.any()";
  const pad = "  ".repeat(depth + 1);
  switch (json.type) {
    case "object": {
      const fields = Object.entries(json.value || {});
      if (!fields.length) return "v.object({})";
      const lines = fields.map(([name, f]) => {
        const inner = validatorText(f.fieldType, depth + 1);
        return `${pad}${name}: ${f.optional ? `v.optional(${inner})` : inner},`;
      });
      return `v.object({\n${lines.join("\n")}\n${"  ".repeat(depth)}})`;
    }
    case "array": return `v.array(${validatorText(json.value, depth)})`;
    case "union": return `v.union(${json.value.map((x) => validatorText(x, depth)).join(", ")})`;
    case "record": return `v.record(${validatorText(json.keys, depth)}, ${validatorText(json.values.fieldType, depth)})`;
    case "id": return `v.id(${JSON.stringify(json.tableName)})`;
    case "literal": return `v.literal(${format(json.value, 0)})`;
    case "number": return "v.float64()";
    case "bigint": return "v.int64()";
    default: return `v.${json.type}()`;
  }
}

export function mount(root, ctx) {
  const body = h("div", { class: "schema" }, h("p", {}, "Loading…"));
  fill(root, h("section", {}, h("h2", {}, "Schema and indexes"), body));
  const stop = ctx.client.subscribe("_system/dashboard:schema", {}, ({ value, error }) => {
    if (error) return fill(body, h("p", { class: "error", role: "alert" }, error));
    const tables = value.schema ? value.schema.tables : [];
    const declared = new Set(tables.map((t) => t.tableName));
    const undeclared = Object.keys(value.indexes).filter((name) => !declared.has(name));
    fill(body,
      value.schema ? null : h("p", {}, "No convex/schema.py: documents are not checked, and tables have only their built-in indexes."),
      value.schema && !value.schema.schemaValidation ? h("p", { class: "note" }, "schema_validation=False: documents are not checked against these validators.") : null,
      tables.map((t) => h("article", { class: "schema-table" },
        h("h3", {}, t.tableName),
        h("pre", { class: "code" }, `define_table(${validatorText(t.documentType)})`),
        indexTable(value.indexes[t.tableName] || []))),
      undeclared.length ? h("p", {}, `Tables with documents but no schema entry: ${undeclared.join(", ")}.`) : null);
  });
  return { unmount: stop };
}

function indexTable(indexes) {
  const rows = [
    h("tr", {}, h("td", {}, "by_id"), h("td", {}, "database"), h("td", {}, "_id")),
    h("tr", {}, h("td", {}, "by_creation_time"), h("td", {}, "database"), h("td", {}, "_creationTime")),
    ...indexes.map((i) => h("tr", {},
      h("td", {}, i.name),
      h("td", {}, i.searchField ? "search" : "database"),
      h("td", {}, i.searchField
        ? `${i.searchField}` + (i.filterFields.length ? ` (filters: ${i.filterFields.join(", ")})` : "")
        : i.fields.join(", ")))),
  ];
  return h("table", { class: "grid small" },
    h("caption", {}, "Indexes"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "Fields"))),
    h("tbody", {}, rows));
}
