// npm ConvexClient.onPaginatedUpdate_experimental: pages load, loadMore, and the subscription
// grows as items arrive at the end and inside an already loaded page (stable page boundaries).
import { ConvexClient } from "convex/browser";
import { out, until, run, url } from "./lib.mjs";

run(async () => {
  const client = new ConvexClient(url);
  const tag = `pages-${process.pid}`;
  for (const n of [1, 2, 3, 4, 5]) {
    await client.mutation("messages:add_item", { tag, n });
  }

  let latest = null;
  let errors = [];
  client.onPaginatedUpdate_experimental(
    "messages:paginated",
    { tag },
    { initialNumItems: 3 },
    (result) => {
      latest = result;
    },
    (e) => errors.push(String(e)),
  );
  const ns = () => latest.results.map((d) => d.n);
  const state = () => JSON.stringify({ ns: latest ? ns() : null, status: latest?.status, errors });
  const snapshot = (step) => out({ step, ns: ns(), status: latest.status, errors });

  await until(() => latest && latest.status !== "LoadingFirstPage", "first page", 10000, state);
  snapshot("first_page");

  const started = latest.loadMore(3);
  out({ step: "load_more_started", started });
  await until(() => latest.status === "Exhausted" || (latest.status === "CanLoadMore" && ns().length >= 5), "second page", 10000, state);
  snapshot("second_page");
  if (latest.status === "CanLoadMore") {
    // A server may report isDone only on a following empty page.
    latest.loadMore(3);
    await until(() => latest.status === "Exhausted", "end of the pages", 10000, state);
    snapshot("exhausted");
  }

  // A new item at the end: the last page grows.
  await client.mutation("messages:add_item", { tag, n: 6 });
  await until(() => ns().length === 6, "item 6 to appear", 10000, state);
  snapshot("grew_at_end");

  // A new item inside the first page: that page grows, nothing shifts or duplicates.
  await client.mutation("messages:add_item", { tag, n: 2.5 });
  await until(() => ns().length === 7, "item 2.5 to appear", 10000, state);
  snapshot("grew_inside");

  // A new item before everything.
  await client.mutation("messages:add_item", { tag, n: 0 });
  await until(() => ns().length === 8, "item 0 to appear", 10000, state);
  snapshot("grew_at_start");

  await client.close();
});
