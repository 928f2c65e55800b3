// The chat template's web frontend (React on convex/react, built by its own `npm run build`,
// served by `pyconvex dev`) in two Chromium tabs: a message sent in one shows in the other
// (and at once, optimistically, in the first); "Load more" fetches older messages; an uploaded
// image shows; reactions, the typing indicator and search work across tabs.
//
//   node chat.mjs <url> <screenshot.png>
import { ConvexHttpClient } from "convex/browser";
import { openBrowser } from "./chromium.mjs";
import { extraArgs, out, run, url } from "./lib.mjs";

const [screenshot] = extraArgs;
const OLD = 30;
const PICTURE = `<svg xmlns="http://www.w3.org/2000/svg" width="240" height="140" viewBox="0 0 240 140">
<rect width="240" height="140" rx="12" fill="#2f6fdf"/><circle cx="70" cy="70" r="38" fill="#ffd23f"/>
<path d="M120 110 L160 40 L200 110 Z" fill="#ffffff"/></svg>`;

// Through pyconvex dev's dev sign-in page (a real token, checked by the deployment).
async function signIn(page, name) {
  await page.goto(`${url}/`);
  await page.click('button:text-is("Sign in")');
  await page.waitForSelector("form.new #name");
  await page.fill("form.new #name", name);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#message");
  out({ event: "signed_in", who: name, header: await page.textContent(".me"), url: page.url() });
}

const messageText = (page) => page.$$eval("li.message .content", (ps) => ps.map((p) => p.textContent));

run(async () => {
  // Older history, written by another client before anyone opens the page.
  const http = new ConvexHttpClient(url);
  const seeder = await http.mutation("users:create", { name: "Sam", email: "sam@example.com" });
  const lobby = await http.mutation("conversations:join_lobby", { user_id: seeder });
  for (let i = 1; i <= OLD; i++) {
    await http.mutation("messages:send", { conversation_id: lobby, sender_id: seeder, content: `old message ${i}` });
  }

  const browser = await openBrowser();
  try {
    const ann = await browser.newPage("ann");
    const bob = await browser.newPage("bob");
    await signIn(ann, "Ann");
    await signIn(bob, "Bob");
    await ann.waitForSelector(`li.message .content:text-is("old message ${OLD}")`);
    const first = await messageText(ann);
    out({ event: "first_page", count: first.length, oldest: first[0], newest: first.at(-1),
      loadMore: await ann.isVisible("button.load-more") });

    // Load more (by keyboard): the older messages come in above.
    await ann.focus("button.load-more");
    await ann.keyboard.press("Enter");
    await ann.waitForSelector('li.message .content:text-is("old message 1")');
    out({ event: "loaded_more", count: (await messageText(ann)).length, end: await ann.textContent(".history .hint") });

    // Send from Ann: her tab shows it before the server confirms (marked pending); Bob's shows it.
    await ann.evaluate(() => {
      window.sawPending = false;
      new MutationObserver(() => {
        if (document.querySelector("li.message.pending")) window.sawPending = true;
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await ann.fill("#message", "hello from Ann");
    await ann.keyboard.press("Enter");
    await bob.waitForSelector('li.message .content:text-is("hello from Ann")');
    await ann.waitForSelector('li.message:not(.pending) .content:text-is("hello from Ann")');
    out({ event: "sent", sawPending: await ann.evaluate(() => window.sawPending), bobSees: true });

    // Bob reacts; Ann sees the count.
    const annsMessage = bob.locator("li.message", { hasText: "hello from Ann" });
    await annsMessage.getByRole("button", { name: "React 👍" }).click();
    await ann.locator("li.message", { hasText: "hello from Ann" }).getByRole("button", { name: "React 👍" })
      .filter({ hasText: "1" }).waitFor();
    out({ event: "reacted" });

    // Bob types (without sending): Ann sees the indicator.
    await bob.fill("#message", "I am typ");
    await ann.waitForSelector('.typing:text("Bob is typing")');
    out({ event: "typing", text: await ann.textContent(".typing") });

    // An image through file storage: Ann uploads, both tabs show it.
    await ann.setInputFiles('input[type="file"]', { name: "picture.svg", mimeType: "image/svg+xml", buffer: Buffer.from(PICTURE) });
    for (const page of [ann, bob]) {
      await page.waitForFunction(() => {
        const img = document.querySelector("img.picture");
        return img && img.complete && img.naturalWidth > 0;
      });
    }
    out({ event: "image", src: await bob.getAttribute("img.picture", "src"), alt: await bob.getAttribute("img.picture", "alt") });

    // Search.
    await ann.fill('input[type="search"]', "hello");
    await ann.waitForSelector('.search-results li:text-is("hello from Ann")');
    out({ event: "search", results: await ann.$$eval(".search-results li", (lis) => lis.map((li) => li.textContent)) });
    await ann.fill('input[type="search"]', "");

    await bob.fill("#message", "");
    await bob.keyboard.type("Nice picture!");
    await bob.keyboard.press("Enter");
    await ann.waitForSelector('li.message .content:text-is("Nice picture!")');
    await ann.evaluate(() => document.querySelector(".history").scrollTo(0, 1e6));
    await ann.screenshot({ path: screenshot });
    out({ event: "screenshot" });
    out({ event: "problems", problems: browser.problems });
  } finally {
    await browser.close();
  }
}, 120000);
