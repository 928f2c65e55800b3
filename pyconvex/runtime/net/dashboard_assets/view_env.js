// Environment: the deployment's variables (read by functions as pyconvex.env), set and removed
// live, as `pyconvex env` does.

import { errorBox, fill, h } from "./dom.js";

export function mount(root, ctx) {
  const table = h("table", { class: "grid", "aria-labelledby": "env-title" });
  const error = errorBox();
  const name = h("input", { name: "name", required: true, placeholder: "OPENAI_API_KEY", pattern: "[A-Za-z][A-Za-z0-9_]*", autocomplete: "off" });
  const value = h("input", { name: "value", required: true, autocomplete: "off" });
  const form = h("form", { class: "env-form", "aria-label": "Set a variable" },
    h("label", { class: "inline" }, "Name ", name), h("label", { class: "inline" }, "Value ", value),
    h("button", { type: "submit", class: "primary" }, "Set"));
  fill(root, h("section", { class: "env" }, h("h2", { id: "env-title" }, "Environment variables"),
    h("p", { class: "hint" }, "Functions read them as pyconvex.env; a change reaches running queries at once."),
    form, error, table));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await set(name.value.trim(), value.value)) {
      name.value = value.value = "";
      name.focus();
    }
  });

  async function set(n, v) {
    try {
      await ctx.client.mutation("_system/env:set", { name: n, value: v });
      error.show("");
      return true;
    } catch (e) {
      error.show(e.message);
      return false;
    }
  }

  const stop = ctx.client.subscribe("_system/dashboard:env", {}, ({ value: vars, error: failed }) => {
    if (failed) return error.show(failed);
    fill(table,
      h("thead", {}, h("tr", {}, ["Name", "Value", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, vars.length ? vars.map((v) => {
        const input = h("input", { value: v.value, "aria-label": `Value of ${v.name}`, autocomplete: "off" });
        return h("tr", { "data-name": v.name },
          h("td", { class: "mono" }, v.name),
          h("td", {}, input),
          h("td", { class: "buttons" },
            h("button", { type: "button", onclick: () => set(v.name, input.value) }, "Save"),
            h("button", { type: "button", class: "danger", "aria-label": `Remove ${v.name}`, onclick: () => set(v.name, null) }, "Remove")));
      }) : h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No variables set."))));
  });
  return { unmount: stop };
}
