// For bench/dashboard_bench.py: how long the dashboard takes, from navigation start, to show
// the first page of a table's documents (in the page's own clock: performance.now()).
//
//   node dashboard_paint.mjs <url> <sign-in path> <rows expected> <table> [<table> ...]
import { openBrowser } from "./chromium.mjs";
import { extraArgs, out, run, url } from "./lib.mjs";

const [signIn, rowsText, ...tables] = extraArgs;
const ROUNDS = 7;

run(async () => {
  const browser = await openBrowser();
  try {
    const first = await browser.newPage("sign-in");
    await first.goto(`${url}${signIn}`);
    await first.waitForSelector(".table-list a");
    await first.close();
    for (let round = 0; round < ROUNDS; round++) {
      for (const table of tables) {
        const page = await browser.newPage(table);
        await page.goto(`${url}/dashboard#/data/${table}`);
        const rows = Number(rowsText);
        await page.waitForFunction((n) => document.querySelectorAll("table.grid tbody tr[data-id]").length >= n, rows, { polling: "raf", timeout: 30000 });
        const ms = await page.evaluate(() => performance.now());
        out({ table, round, ms });
        await page.close();
      }
    }
    out({ event: "problems", problems: browser.problems });
  } finally {
    await browser.close();
  }
}, 300000);
