// The task board template's web frontend in two Chromium tabs: a task added in one shows in
// the other; moved to another column (by keyboard, with the status select) in one, it moves
// in the other, live; a task waiting for an unfinished one cannot be done (the page says why
// and leaves it where it is).
//
//   node tasks.mjs <url> <screenshot.png>
import { ConvexHttpClient } from "convex/browser";
import { openBrowser } from "./chromium.mjs";
import { extraArgs, out, run, url } from "./lib.mjs";

const [screenshot] = extraArgs;

// Through pyconvex dev's dev sign-in page (a real token, checked by the deployment).
async function signIn(page, name) {
  await page.goto(`${url}/`);
  await page.click('button:text-is("Sign in")');
  await page.waitForSelector("form.new #name");
  await page.fill("form.new #name", name);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".board");
  out({ event: "signed_in", who: name, header: await page.textContent(".me"), url: page.url() });
}

const column = (page, title) => page.$eval(`li.card:has(.title:text-is("${title}"))`, (li) => li.closest("section").dataset.status);

run(async () => {
  const browser = await openBrowser();
  try {
    const ann = await browser.newPage("ann");
    const bob = await browser.newPage("bob");
    await signIn(ann, "Ann");
    await signIn(bob, "Bob");

    await ann.fill("#title", "Write the docs");
    await ann.keyboard.press("Enter");
    await bob.waitForSelector('li.card .title:text-is("Write the docs")');
    out({ event: "added", column: await column(bob, "Write the docs") });

    // Move by keyboard: focus the card's status select, choose "In progress".
    await ann.focus('li.card:has(.title:text-is("Write the docs")) select');
    await ann.selectOption('li.card:has(.title:text-is("Write the docs")) select', "in_progress");
    await bob.waitForSelector('section[data-status="in_progress"] li.card .title:text-is("Write the docs")');
    out({ event: "moved", column: await column(bob, "Write the docs"), annColumn: await column(ann, "Write the docs") });

    // A task that depends on another cannot be done first: said, and left where it is.
    const http = new ConvexHttpClient(url);
    const docs = await ann.$eval('li.card:has(.title:text-is("Write the docs"))', (li) => li.dataset.id);
    const project = (await http.query("projects:public", {}))[0]._id;
    const review = await http.mutation("tasks:create", { project_id: project, title: "Review the docs", priority: "high" });
    await http.mutation("tasks:add_dependency", { task_id: review, depends_on: docs });
    await ann.waitForSelector('li.card .title:text-is("Review the docs")');
    await ann.selectOption('li.card:has(.title:text-is("Review the docs")) select', "done");
    await ann.waitForSelector('[role="alert"]');
    out({ event: "refused", alert: await ann.textContent('[role="alert"]'), column: await column(ann, "Review the docs") });

    for (const [title, priority] of [["Fix the login bug", "urgent"], ["Plan the launch", "low"]]) {
      await http.mutation("tasks:create", { project_id: project, title, priority });
    }
    await ann.waitForSelector('li.card .title:text-is("Plan the launch")');
    await ann.selectOption('li.card:has(.title:text-is("Fix the login bug")) select', "review");
    await bob.waitForSelector('section[data-status="review"] li.card .title:text-is("Fix the login bug")');
    await bob.screenshot({ path: screenshot });
    out({ event: "screenshot" });
    out({ event: "problems", problems: browser.problems });
  } finally {
    await browser.close();
  }
}, 120000);
