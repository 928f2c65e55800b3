// npm ConvexHttpClient: query, mutation, action, ConvexError, consistentQuery, and pages driven by
// hand with cursor / continueCursor.
import { ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { out, enc, rejectionOf, run, url } from "./lib.mjs";

run(async () => {
  const client = new ConvexHttpClient(url);
  const author = `http-${process.pid}`;

  const id = await client.mutation("messages:send", { author, body: "over http" });
  out({ step: "mutation", id });
  const docs = await client.query("messages:list", { author });
  out({ step: "query", docs: enc(docs) });
  const viaAction = await client.action("messages:send_via_action", { author, body: "http action" });
  out({ step: "action", result: enc(viaAction) });

  const err = await rejectionOf(client.mutation("messages:fail", {}), "messages:fail");
  out({ step: "mutation_error", isConvexError: err instanceof ConvexError, data: enc(err.data ?? null) });
  const qerr = await rejectionOf(client.query("messages:fail_query", {}), "messages:fail_query");
  out({ step: "query_error", isConvexError: qerr instanceof ConvexError, data: enc(qerr.data ?? null) });

  const consistent = await client.consistentQuery("messages:list", { author });
  out({ step: "consistent_query", count: consistent.length });

  // Pages by hand: 7 items, 3 per page.
  const tag = `http-pages-${process.pid}`;
  for (const n of [5, 1, 7, 3, 2, 6, 4]) {
    await client.mutation("messages:add_item", { tag, n });
  }
  const pages = [];
  let cursor = null;
  for (let i = 0; i < 10; i++) {
    const page = await client.query("messages:paginated", {
      tag,
      paginationOpts: { numItems: 3, cursor },
    });
    pages.push({ ns: page.page.map((d) => d.n), isDone: page.isDone, cursorType: typeof page.continueCursor });
    if (page.isDone) break;
    cursor = page.continueCursor;
  }
  out({ step: "pages", pages });
});
