// Files: what file storage holds, newest first: a preview, a download link, delete.

import { bytes, errorBox, fill, h, when } from "./dom.js";

const PAGE_SIZE = 24;

export function mount(root, ctx) {
  const grid = h("ul", { class: "file-grid", "aria-label": "Stored files" });
  const error = errorBox();
  const newer = h("button", { type: "button", onclick: () => move(-1) }, "← Newer");
  const older = h("button", { type: "button", onclick: () => move(1) }, "Older →");
  fill(root, h("section", { class: "files" }, h("h2", {}, "File storage"), error, grid,
    h("div", { class: "pager" }, newer, older)));
  const cursors = [null];
  let page = null;
  let stop = null;

  function restart() {
    if (stop) stop();
    stop = ctx.client.subscribe("_system/dashboard:files",
      { paginationOpts: { numItems: PAGE_SIZE, cursor: cursors[cursors.length - 1] } },
      ({ value, error: failed }) => {
        if (failed) return error.show(failed);
        page = value;
        render();
      });
  }

  function move(step) {
    if (step > 0) {
      if (!page || page.isDone) return;
      cursors.push(page.continueCursor);
    } else if (cursors.length > 1) cursors.pop();
    restart();
  }

  function render() {
    newer.disabled = cursors.length === 1;
    older.disabled = page.isDone;
    if (!page.page.length) return fill(grid, h("li", { class: "empty" }, "No files stored."));
    fill(grid, page.page.map((f) => {
      const url = `/api/storage/${encodeURIComponent(f._id)}`;
      const type = f.contentType || "application/octet-stream";
      const preview = type.startsWith("image/")
        ? h("img", { src: url, alt: `Preview of ${f._id}`, loading: "lazy" })
        : h("div", { class: "file-icon", "aria-hidden": "true" }, type.split("/")[1] || "file");
      return h("li", { class: "file", "data-id": f._id }, preview,
        h("div", { class: "mono small" }, f._id),
        h("div", { class: "small" }, `${type} · ${bytes(f.size)} · ${when(f._creationTime)}`),
        h("div", { class: "buttons" },
          h("a", { href: url, download: f._id, class: "button" }, "Download"),
          h("a", { href: url, target: "_blank", rel: "noopener", class: "button" }, "Open"),
          h("button", { type: "button", class: "danger", onclick: () => remove(f._id) }, "Delete")));
    }));
  }

  async function remove(id) {
    try {
      await ctx.client.mutation("_system/storage:delete", { id });
      error.show("");
    } catch (e) {
      error.show(e.message);
    }
  }

  restart();
  return { unmount: () => stop && stop() };
}
