// Schedules: the scheduled functions (pending ones can be canceled) and the cron jobs.

import { errorBox, fill, h, when } from "./dom.js";
import { cell } from "./values.js";

export function mount(root, ctx) {
  const jobs = h("table", { class: "grid", "aria-labelledby": "jobs-title" });
  const crons = h("table", { class: "grid", "aria-labelledby": "crons-title" });
  const error = errorBox();
  fill(root, h("section", { class: "schedules" },
    h("h2", { id: "jobs-title" }, "Scheduled functions"), error, h("div", { class: "grid-wrap" }, jobs),
    h("h2", { id: "crons-title" }, "Cron jobs"), h("div", { class: "grid-wrap" }, crons)));

  const stop = ctx.client.subscribe("_system/dashboard:jobs", {}, ({ value, error: failed }) => {
    if (failed) return error.show(failed);
    renderJobs(value.jobs);
    renderCrons(value.crons);
  });

  function renderJobs(list) {
    fill(jobs,
      h("thead", {}, h("tr", {}, ["Function", "Arguments", "Scheduled for", "State", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.length ? list.map((job) => {
        const kind = job.state ? job.state.kind : "?";
        return h("tr", { "data-id": job._id },
          h("td", {}, job.name),
          h("td", { class: "mono" }, cell(Array.isArray(job.args) ? job.args[0] : job.args, 60)),
          h("td", {}, when(job.scheduledTime)),
          h("td", { class: `state state-${kind}` }, kind, job.state && job.state.error ? `: ${job.state.error}` : ""),
          h("td", {}, kind === "pending" ? h("button", {
            type: "button", class: "danger", "aria-label": `Cancel ${job.name} scheduled for ${when(job.scheduledTime)}`,
            onclick: () => cancel(job._id),
          }, "Cancel") : null));
      }) : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Nothing scheduled."))));
  }

  function renderCrons(list) {
    fill(crons,
      h("thead", {}, h("tr", {}, ["Name", "Function", "Schedule", "Next run"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.length ? list.map((c) => h("tr", {},
        h("td", {}, c.name),
        h("td", {}, c.function),
        h("td", { class: "mono" }, scheduleText(c.schedule)),
        h("td", {}, when(c.nextRun))))
        : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No cron jobs (convex/crons.py)."))));
  }

  async function cancel(id) {
    try {
      await ctx.client.mutation("_system/scheduler:cancel", { id });
      error.show("");
    } catch (e) {
      error.show(e.message);
    }
  }

  return { unmount: stop };
}

function scheduleText(schedule) {
  if (!schedule || typeof schedule !== "object") return cell(schedule);
  if (schedule.kind === "cron") return schedule.expression;
  const rest = Object.entries(schedule).filter(([k]) => k !== "kind").map(([k, v]) => `${k}=${cell(v, 20)}`);
  return `${schedule.kind} ${rest.join(" ")}`;
}
