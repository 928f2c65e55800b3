// Headless Chromium (Debian's, never a downloaded build) driven by playwright-core, for the
// browser tests: a fresh profile per run, and every page watched for console errors, uncaught
// exceptions and requests leaving 127.0.0.1.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.PYCONVEX_CHROMIUM || "/usr/bin/chromium";

export async function openBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pyconvex-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const problems = [];
  let watching = true;

  /** A new page; its console errors, page errors and outside requests are recorded. */
  async function newPage(name, { expectErrors = false } = {}) {
    const page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" && !expectErrors && watching) problems.push(`${name}: console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => {
      if (watching) problems.push(`${name}: uncaught ${e.message}`);
    });
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (!["data:", "blob:", "about:"].includes(u.protocol) && u.hostname !== "127.0.0.1") {
        problems.push(`${name}: request to ${r.url()}`);
      }
    });
    return page;
  }

  return {
    context,
    newPage,
    problems,
    async close() {
      watching = false;
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The text of every element matching `selector`. */
export function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));
}
