// The dashboard in headless Chromium: refused without the sign-in token; once signed in it
// lists the tables, shows a document another client inserts without a reload, edits one by
// keyboard (a schema violation is refused and said), runs functions (as no user and as one),
// and loads nothing from outside 127.0.0.1 with no console error.
//
//   node dashboard.mjs <url> <sign-in path> <screenshot.png>
import { ConvexHttpClient } from "convex/browser";
import { openBrowser, texts } from "./chromium.mjs";
import { extraArgs, out, run, url } from "./lib.mjs";

const [signIn, screenshot] = extraArgs;

run(async () => {
  const browser = await openBrowser();
  try {
    // -- nothing without the token ---------------------------------------------------------
    const anon = await browser.newPage("anonymous", { expectErrors: true });
    const page401 = await anon.goto(`${url}/dashboard`);
    const asset401 = await anon.request.get(`${url}/dashboard/assets/app.js`);
    const session401 = await anon.request.get(`${url}/dashboard/session`);
    out({
      event: "refused",
      page: page401.status(),
      text: await anon.textContent("h1"),
      asset: asset401.status(),
      session: session401.status(),
      sessionBody: await session401.text(),
    });
    await anon.close();

    // -- sign in with the one-time link ----------------------------------------------------
    const page = await browser.newPage("dashboard");
    await page.goto(`${url}${signIn}`);
    await page.waitForSelector('.table-list a[data-table="messages"]');
    out({ event: "signed_in", url: page.url(), tables: await page.$$eval(".table-list a", (as) => as.map((a) => a.dataset.table)) });

    const again = await browser.newPage("spent token", { expectErrors: true });
    const spent = await again.goto(`${url}${signIn}`);
    out({ event: "spent", status: spent.status(), text: await again.textContent("h1") });
    await again.close();

    // -- a document inserted by another client shows without a reload -----------------------
    await page.click('.table-list a[data-table="messages"]');
    await page.waitForSelector("#table-title:text-is('messages')");
    const http = new ConvexHttpClient(url);
    const id = await http.mutation("messages:send", { author: "bob", body: "from another client" });
    const row = `tr[data-id="${id}"]`;
    await page.waitForSelector(`${row} td:text-is("from another client")`);
    out({ event: "live_insert", id, count: await page.textContent(".count"), navigations: 0 });

    // -- edit by keyboard ------------------------------------------------------------------
    await page.focus(`${row} button.link`);
    await page.keyboard.press("Enter");
    const focused = await page.evaluate(() => document.activeElement.tagName);
    await page.fill(".editor textarea", '{ author: "bob", body: 5 }');
    await page.keyboard.press("Control+Enter");
    await page.waitForSelector(".editor .error:not([hidden])");
    const refusal = await page.textContent(".editor .error");
    await page.fill(".editor textarea", '{ author: "bob", body: "edited in the dashboard" }');
    await page.keyboard.press("Control+Enter");
    await page.waitForSelector(`${row} td:text-is("edited in the dashboard")`);
    const editorHidden = await page.isHidden(".editor");
    const focusBack = await page.evaluate(() => document.activeElement.getAttribute("aria-label"));
    const stored = (await http.query("messages:list", {})).find((m) => m._id === id);
    out({ event: "edited", focused, refusal, editorHidden, focusBack, stored: stored.body });

    // -- run functions ---------------------------------------------------------------------
    await page.goto(`${url}/dashboard#/functions/messages:shout`);
    await page.waitForSelector("#fn-args");
    await page.fill("#fn-args", '{ text: "hi there" }');
    await page.press("#fn-args", "Control+Enter");
    await page.waitForSelector("#fn-result");
    out({
      event: "ran",
      result: await page.textContent("#fn-result"),
      logs: await page.textContent("#fn-logs"),
      outcome: await page.textContent(".outcome"),
    });
    await page.goto(`${url}/dashboard#/functions/messages:whoami`);
    await page.waitForSelector("h2:text-is('messages:whoami')");
    await page.check("#fn-as-user");
    await page.fill("#fn-identity", '{ subject: "u1", name: "Ann" }');
    await page.click("button.primary");
    await page.waitForSelector("#fn-result");
    const asUser = await page.textContent("#fn-result");
    await page.uncheck("#fn-as-user");
    await page.click("button.primary");
    await page.waitForFunction(() => document.querySelector("#fn-result")?.textContent === "null");
    out({ event: "identity", asUser, asNobody: await page.textContent("#fn-result") });

    // -- a screenshot of the data view -----------------------------------------------------
    for (const [author, body] of [["ann", "hello from Ann"], ["carl", "the dashboard is live"]]) {
      await http.mutation("messages:send", { author, body });
    }
    await page.goto(`${url}/dashboard#/data/messages`);
    await page.waitForSelector('td:text-is("the dashboard is live")');
    await page.click(`${row} button.link`);
    await page.waitForSelector(".editor:not([hidden])");
    await page.screenshot({ path: screenshot });
    out({ event: "screenshot", rows: (await texts(page, "table.grid tbody tr")).length });
    await page.keyboard.press("Escape");

    // -- the live log has the function run above -------------------------------------------
    await page.goto(`${url}/dashboard#/logs`);
    await page.waitForSelector('li.log:has(.name:text-is("messages:shout"))');
    out({ event: "logs", text: await page.textContent('li.log:has(.name:text-is("messages:shout"))') });

    // -- a scheduled function, canceled ----------------------------------------------------
    await http.mutation("messages:later", { body: "in an hour" });
    await page.goto(`${url}/dashboard#/schedules`);
    await page.waitForSelector('td.state-pending');
    await page.click('button:text-is("Cancel")');
    await page.waitForSelector('td.state-canceled');
    out({ event: "canceled", states: await texts(page, "td.state") });

    // -- a stored file: previewed, then deleted --------------------------------------------
    const upload = await http.mutation("messages:upload_url", {});
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>';
    const { storageId } = await (await fetch(upload, { method: "POST", headers: { "Content-Type": "image/svg+xml" }, body: svg })).json();
    await page.goto(`${url}/dashboard#/files`);
    await page.waitForFunction((id) => {
      const img = document.querySelector(`li.file[data-id="${id}"] img`);
      return img && img.complete && img.naturalWidth > 0;
    }, storageId);
    const download = await page.getAttribute(`li.file[data-id="${storageId}"] a[download]`, "href");
    await page.click(`li.file[data-id="${storageId}"] button:text-is("Delete")`);
    await page.waitForSelector(`li.file[data-id="${storageId}"]`, { state: "detached" });
    out({ event: "file", download, left: await page.textContent(".file-grid") });

    // -- an environment variable -----------------------------------------------------------
    await page.goto(`${url}/dashboard#/env`);
    await page.fill('input[name="name"]', "GREETING");
    await page.fill('input[name="value"]', "hello");
    await page.keyboard.press("Enter");
    await page.waitForSelector('tr[data-name="GREETING"]');
    out({ event: "env", value: await page.inputValue('tr[data-name="GREETING"] input') });

    // -- the SQL box -----------------------------------------------------------------------
    await page.goto(`${url}/dashboard#/sql`);
    await page.fill("#sql-query", "SELECT author, count(*) AS n FROM messages GROUP BY author ORDER BY author");
    await page.press("#sql-query", "Control+Enter");
    await page.waitForSelector("#sql-result tbody tr");
    out({ event: "sql", rows: await page.$$eval("#sql-result tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent))) });
    out({ event: "problems", problems: browser.problems });
  } finally {
    await browser.close();
  }
}, 90000);
