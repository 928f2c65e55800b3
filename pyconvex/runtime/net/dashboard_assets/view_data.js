// Data: the tables, and one table's documents a page at a time (newest first), filtered by
// field, live. Documents are edited, added and deleted through _system/dashboard mutations,
// which check them against the schema like any mutation.

import { errorBox, fill, h, submitOnCtrlEnter, when } from "./dom.js";
import { cell, format, kindOf, parse, ParseError } from "./values.js";

const PAGE_SIZE = 50;
const OPERATORS = [
  ["eq", "="], ["neq", "≠"], ["lt", "<"], ["lte", "≤"], ["gt", ">"], ["gte", "≥"],
];

export function mount(root, ctx, param) {
  const state = {
    table: null, tables: [], cursors: [null], filters: [], page: null, selected: new Set(),
    stopPage: null, editing: null,
  };
  const tableList = h("ul", { class: "table-list" });
  const title = h("h2", { id: "table-title" }, "Tables");
  const count = h("span", { class: "count" });
  const columnsList = h("datalist", { id: "columns" });
  const fieldInput = h("input", { name: "field", list: "columns", placeholder: "field (a.b for nested)", required: true });
  const opSelect = h("select", { name: "op", "aria-label": "Comparison" },
    OPERATORS.map(([v, label]) => h("option", { value: v }, label)));
  const valueInput = h("input", { name: "value", placeholder: 'value: "text", 12, true, 5n' });
  const filterError = errorBox();
  const chips = h("ul", { class: "chips", "aria-label": "Filters" });
  const filterForm = h("form", { class: "filters", "aria-label": "Filter documents" },
    h("label", { class: "inline" }, "Field ", fieldInput), columnsList,
    h("label", { class: "inline" }, "is ", opSelect),
    h("label", { class: "inline" }, "Value ", valueInput),
    h("button", { type: "submit" }, "Add filter"), chips, filterError);
  const addButton = h("button", { type: "button", onclick: () => openEditor(null) }, "Add document");
  const deleteButton = h("button", { type: "button", class: "danger", disabled: true, onclick: askDelete }, "Delete selected");
  const confirmBox = h("div", { class: "confirm", hidden: true, role: "alertdialog", "aria-label": "Confirm delete" });
  const actionError = errorBox();
  const grid = h("table", { class: "grid", "aria-labelledby": "table-title" });
  const newer = h("button", { type: "button", onclick: () => move(-1) }, "← Newer");
  const older = h("button", { type: "button", onclick: () => move(1) }, "Older →");
  const pageInfo = h("span", { class: "page-info", "aria-live": "polite" });
  const editor = buildEditor();
  const tableView = h("div", { class: "table-view" },
    h("div", { class: "toolbar" }, title, count, h("span", { class: "spacer" }), addButton, deleteButton),
    confirmBox, actionError, filterForm,
    h("div", { class: "grid-wrap" }, grid),
    h("div", { class: "pager" }, newer, pageInfo, older));
  fill(root, h("section", { class: "data" },
    h("nav", { class: "tables", "aria-label": "Tables" }, h("h2", {}, "Tables"), tableList),
    tableView, editor.el));

  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let value;
    const text = valueInput.value.trim();
    try {
      value = text === "" ? "" : parse(text);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      value = text; // plain words are a string
    }
    state.filters.push({ field: fieldInput.value.trim(), op: opSelect.value, value });
    fieldInput.value = valueInput.value = "";
    filterError.show("");
    restart();
  });

  const stopTables = ctx.client.subscribe("_system/dashboard:tables", {}, ({ value, error }) => {
    if (error) return actionError.show(error);
    state.tables = value;
    renderTables();
    if (!state.table && value.length && !param) selectTable(value.find((t) => !t.system)?.name || value[0].name);
  });

  function renderTables() {
    fill(tableList, state.tables.map((t) => h("li", {},
      h("a", { href: `#/data/${encodeURIComponent(t.name)}`, class: t.system ? "system" : null,
        "aria-current": t.name === state.table ? "page" : null, "data-table": t.name },
      h("span", { class: "name" }, t.name), h("span", { class: "n" }, t.documents.toLocaleString())))));
    const current = state.tables.find((t) => t.name === state.table);
    const n = current ? current.documents : 0;
    count.textContent = current ? `${n.toLocaleString()} document${n === 1 ? "" : "s"}` : "";
  }

  function selectTable(name) {
    if (name === state.table) return;
    state.table = name;
    state.cursors = [null];
    state.filters = [];
    closeEditor();
    title.textContent = name;
    const system = name.startsWith("_");
    addButton.disabled = system;
    renderTables();
    restart();
  }

  function restart() {
    if (state.stopPage) state.stopPage();
    state.page = null;
    state.selected.clear();
    fill(grid, h("tbody", {}, h("tr", {}, h("td", { class: "empty" }, "Loading…"))));
    fill(chips, state.filters.map((f, i) => h("li", {},
      `${f.field} ${OPERATORS.find(([v]) => v === f.op)[1]} ${cell(f.value, 40)} `,
      h("button", { type: "button", "aria-label": `Remove filter on ${f.field}`,
        onclick: () => { state.filters.splice(i, 1); state.cursors = [null]; restart(); } }, "×"))));
    const opts = { numItems: PAGE_SIZE, cursor: state.cursors[state.cursors.length - 1] };
    if (state.filters.length) opts.maximumRowsRead = 20000;
    const args = { table: state.table, paginationOpts: opts, order: "desc" };
    if (state.filters.length) args.filters = state.filters;
    state.stopPage = ctx.client.subscribe("_system/dashboard:page", args, ({ value, error }) => {
      if (error) {
        filterError.show(error);
        fill(grid);
        return;
      }
      state.page = value;
      renderPage();
    });
  }

  function move(step) {
    if (step > 0) {
      if (!state.page || state.page.isDone) return;
      state.cursors.push(state.page.continueCursor);
    } else {
      if (state.cursors.length === 1) return;
      state.cursors.pop();
    }
    restart();
  }

  function columnsOf(docs) {
    const seen = new Set(["_id"]);
    for (const d of docs) for (const k of Object.keys(d)) if (k !== "_creationTime") seen.add(k);
    seen.add("_creationTime");
    return [...seen];
  }

  function renderPage() {
    const docs = state.page.page;
    const columns = columnsOf(docs);
    fill(columnsList, columns.map((c) => h("option", { value: c })));
    const system = state.table.startsWith("_");
    const head = h("thead", {}, h("tr", {},
      system ? null : h("th", { scope: "col", class: "select" }, h("span", { class: "visually-hidden" }, "Select")),
      columns.map((c) => h("th", { scope: "col" }, c))));
    const rows = docs.map((doc) => {
      const id = doc._id;
      return h("tr", { "data-id": id, class: state.editing === id ? "editing" : null },
        system ? null : h("td", { class: "select" }, h("input", {
          type: "checkbox", "aria-label": `Select ${id}`, checked: state.selected.has(id),
          onchange: (e) => { e.target.checked ? state.selected.add(id) : state.selected.delete(id); syncDelete(); },
        })),
        columns.map((c) => {
          if (c === "_id") {
            return h("td", { class: "id" }, system ? id : h("button", {
              type: "button", class: "link", "aria-label": `Edit document ${id}`, onclick: () => openEditor(doc),
            }, id));
          }
          if (c === "_creationTime") return h("td", { class: "time" }, when(doc[c]));
          if (!(c in doc)) return h("td", { class: "missing" }, "unset");
          return h("td", { class: `v-${kindOf(doc[c])}`, title: format(doc[c], 0) }, cell(doc[c]));
        }));
    });
    if (!docs.length) {
      rows.push(h("tr", {}, h("td", { class: "empty", colspan: columns.length + 1 },
        state.filters.length ? "No documents match these filters on this page." : "No documents.")));
    }
    fill(grid, head, h("tbody", {}, rows));
    const n = state.cursors.length;
    pageInfo.textContent = `Page ${n}` + (state.page.pageStatus === "SplitRequired"
      ? " (stopped after 20,000 documents read: Older goes on)" : "");
    newer.disabled = n === 1;
    older.disabled = state.page.isDone;
    syncDelete();
    if (state.editing && state.editing !== "new" && !docs.some((d) => d._id === state.editing)) {
      editor.note("This document is no longer on this page (deleted, or moved by a filter).");
    }
  }

  function syncDelete() {
    deleteButton.disabled = state.selected.size === 0;
    deleteButton.textContent = state.selected.size ? `Delete selected (${state.selected.size})` : "Delete selected";
  }

  function askDelete() {
    const ids = [...state.selected];
    const yes = h("button", { type: "button", class: "danger", onclick: async () => {
      confirmBox.hidden = true;
      try {
        await ctx.client.mutation("_system/dashboard:delete", { ids });
        state.selected.clear();
        syncDelete();
        actionError.show("");
      } catch (e) {
        actionError.show(e.message);
      }
    } }, `Delete ${ids.length}`);
    fill(confirmBox, `Delete ${ids.length} document${ids.length === 1 ? "" : "s"} from ${state.table}? `,
      yes, h("button", { type: "button", onclick: () => { confirmBox.hidden = true; deleteButton.focus(); } }, "Keep"));
    confirmBox.hidden = false;
    yes.focus();
  }

  // -- the document editor ---------------------------------------------------------------

  function buildEditor() {
    const heading = h("h3", { id: "editor-title" });
    const text = h("textarea", { class: "code", rows: 12, spellcheck: "false", "aria-labelledby": "editor-title" });
    const error = errorBox();
    const note = h("p", { class: "note", hidden: true });
    const save = h("button", { type: "button", class: "primary", onclick: () => submit() }, "Save");
    const remove = h("button", { type: "button", class: "danger", onclick: () => removeOne() }, "Delete");
    const cancel = h("button", { type: "button", onclick: () => closeEditor() }, "Cancel");
    const el = h("aside", { class: "editor", hidden: true, "aria-labelledby": "editor-title" },
      heading, h("p", { class: "hint" }, "JSON5: int64 as 5n; system fields (_id, _creationTime) are kept as they are. Ctrl+Enter saves, Esc closes."),
      text, note, error, h("div", { class: "buttons" }, save, remove, cancel));
    submitOnCtrlEnter(text, () => submit());
    el.addEventListener("keydown", (e) => { if (e.key === "Escape") closeEditor(); });
    return {
      el, heading, text, error, remove,
      note(message) { note.textContent = message; note.hidden = !message; },
    };
  }

  function markEditing() {
    for (const tr of grid.querySelectorAll("tr.editing")) tr.classList.remove("editing");
    const tr = state.editing && grid.querySelector(`tr[data-id="${CSS.escape(state.editing)}"]`);
    if (tr) tr.classList.add("editing");
  }

  function openEditor(doc) {
    state.editing = doc ? doc._id : "new";
    markEditing();
    const fields = {};
    for (const [k, v] of Object.entries(doc || {})) if (!k.startsWith("_")) fields[k] = v;
    editor.heading.textContent = doc ? `Edit ${doc._id}` : `New document in ${state.table}`;
    editor.text.value = format(fields);
    editor.remove.hidden = !doc;
    editor.error.show("");
    editor.note("");
    editor.el.hidden = false;
    editor.text.focus();
  }

  function closeEditor() {
    const was = state.editing;
    state.editing = null;
    markEditing();
    editor.el.hidden = true;
    if (was && was !== "new") {
      const button = grid.querySelector(`tr[data-id="${CSS.escape(was)}"] button.link`);
      if (button) button.focus();
    } else if (was === "new") addButton.focus();
  }

  async function submit() {
    let document;
    try {
      document = parse(editor.text.value);
    } catch (e) {
      editor.error.show(e.message);
      return;
    }
    if (document === null || typeof document !== "object" || Array.isArray(document)) {
      editor.error.show("A document is an object: { field: value, … }");
      return;
    }
    try {
      if (state.editing === "new") {
        await ctx.client.mutation("_system/dashboard:insert", { table: state.table, document });
      } else {
        await ctx.client.mutation("_system/dashboard:replace", { id: state.editing, document });
      }
      closeEditor();
    } catch (e) {
      editor.error.show(e.message);
    }
  }

  async function removeOne() {
    try {
      await ctx.client.mutation("_system/dashboard:delete", { ids: [state.editing] });
      closeEditor();
    } catch (e) {
      editor.error.show(e.message);
    }
  }

  if (param) selectTable(param);

  return {
    update(name) { if (name) selectTable(name); },
    unmount() {
      stopTables();
      if (state.stopPage) state.stopPage();
    },
  };
}
