// Logs: every function execution as it happens (the admin log stream), newest first.

import { fill, h, when } from "./dom.js";

const KEEP = 500;
const LETTER = { query: "Q", mutation: "M", action: "A", http_action: "H" };

export function mount(root, ctx) {
  const list = h("ol", { class: "log-list", "aria-label": "Executions, newest first" });
  const filter = h("input", { type: "search", placeholder: "Filter by function or text", "aria-label": "Filter logs" });
  const failures = h("input", { type: "checkbox" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const state = h("span", { class: "hint", role: "status" }, "connecting…");
  fill(root, h("section", { class: "logs" },
    h("div", { class: "toolbar" }, h("h2", {}, "Logs"), filter,
      h("label", { class: "inline" }, failures, " Failures only"), pause, state),
    list));
  const entries = [];
  let paused = false;
  const abort = new AbortController();

  filter.addEventListener("input", render);
  failures.addEventListener("change", render);
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) render();
  });

  function shown(e) {
    if (failures.checked && e.status !== "failure") return false;
    const q = filter.value.trim().toLowerCase();
    if (!q) return true;
    return e.path.toLowerCase().includes(q) || e.logLines.some((l) => l.toLowerCase().includes(q)) ||
      (e.error || "").toLowerCase().includes(q);
  }

  function row(e) {
    return h("li", { class: `log ${e.status}` },
      h("div", { class: "log-head" },
        h("time", {}, when(e.timestamp)),
        h("span", { class: `kind kind-${e.kind}`, title: e.kind }, LETTER[e.kind] || "?"),
        h("span", { class: "name" }, e.path),
        h("span", { class: "duration" }, `${e.durationMs.toFixed(1)} ms`),
        h("span", { class: "outcome" }, e.status)),
      e.logLines.length ? h("pre", { class: "code" }, e.logLines.join("\n")) : null,
      e.error ? h("pre", { class: "code error-text" }, e.traceback || e.error) : null);
  }

  function render() {
    fill(list, entries.filter(shown).slice(0, KEEP).map(row));
    if (!list.firstChild) fill(list, h("li", { class: "empty" }, "No executions yet."));
  }

  async function follow() {
    try {
      const response = await ctx.admin("/api/_pyconvex/logs?history=100&follow=1", { signal: abort.signal });
      if (!response.ok) {
        state.textContent = `log stream refused (${response.status})`;
        return;
      }
      state.textContent = "live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const lines = buffer.split("\n");
        buffer = lines.pop();
        let added = false;
        for (const line of lines) {
          if (!line) continue;
          const entry = JSON.parse(line);
          if (entry.type === "open") continue;
          entries.unshift(entry);
          added = true;
        }
        entries.length = Math.min(entries.length, KEEP);
        if (added && !paused) render();
      }
      state.textContent = "stream ended (the server stopped?)";
    } catch (e) {
      if (e.name !== "AbortError") state.textContent = `log stream lost: ${e.message}`;
    }
  }

  render();
  follow();
  return { unmount: () => abort.abort() };
}
