// ConvexReactClient (convex/react) without rendering, given `webSocketConstructor` from `ws`
// (Node 20 has no global WebSocket): watchQuery, a mutation with an optimistic update, and
// watchPaginatedQuery.
import { ConvexReactClient } from "convex/react";
import WebSocket from "ws";
import { out, enc, until, run, url } from "./lib.mjs";

run(async () => {
  const client = new ConvexReactClient(url, { webSocketConstructor: WebSocket });
  const author = `react-${process.pid}`;
  const args = { author };

  const watch = client.watchQuery("messages:list", args);
  let notified = 0;
  const unsubscribe = watch.onUpdate(() => {
    notified += 1;
  });
  await until(() => watch.localQueryResult() !== undefined, "watchQuery first result");
  out({ step: "initial", docs: enc(watch.localQueryResult()) });

  // Optimistic update: visible at once, replaced by the server's document when the promise resolves.
  const pending = client.mutation(
    "messages:send",
    { author, body: "optimistic" },
    {
      optimisticUpdate: (localStore, mutationArgs) => {
        const current = localStore.getQuery("messages:list", args);
        if (current !== undefined) {
          localStore.setQuery("messages:list", args, [
            ...current,
            { _id: "optimistic-temp", _creationTime: 0, author, body: mutationArgs.body },
          ]);
        }
      },
    },
  );
  const optimistic = watch.localQueryResult();
  out({ step: "optimistic", ids: optimistic.map((d) => d._id), bodies: optimistic.map((d) => d.body) });
  const id = await pending;
  const settled = watch.localQueryResult();
  out({ step: "resolved", id, ids: settled.map((d) => d._id), bodies: settled.map((d) => d.body) });

  // A failing mutation's optimistic update is rolled back.
  let failed = null;
  try {
    await client.mutation("messages:fail", {}, {
      optimisticUpdate: (localStore) => {
        const current = localStore.getQuery("messages:list", args);
        if (current !== undefined) {
          localStore.setQuery("messages:list", args, [...current, { _id: "doomed", author, body: "doomed" }]);
        }
      },
    });
  } catch (e) {
    failed = e;
  }
  const afterFail = watch.localQueryResult();
  out({ step: "rolled_back", failed: failed !== null, data: enc(failed?.data ?? null), ids: afterFail.map((d) => d._id) });
  out({ step: "notified", count: notified });

  // Paginated watch (what usePaginatedQuery uses).
  const tag = `react-pages-${process.pid}`;
  for (const n of [1, 2, 3]) {
    await client.mutation("messages:add_item", { tag, n });
  }
  const pw = client.watchPaginatedQuery("messages:paginated", { tag }, { initialNumItems: 2, id: 1 });
  const unsubPages = pw.onUpdate(() => {});
  const pns = () => (pw.localQueryResult()?.results ?? []).map((d) => d.n);
  const pstate = () => JSON.stringify({ ns: pns(), status: pw.localQueryResult()?.status });
  await until(() => pw.localQueryResult() && pw.localQueryResult().status !== "LoadingFirstPage", "paginated first page", 10000, pstate);
  out({ step: "paginated_first", ns: pns(), status: pw.localQueryResult().status });
  await client.mutation("messages:add_item", { tag, n: 1.5 });
  await until(() => pns().length === 3, "paginated page to grow", 10000, pstate);
  out({ step: "paginated_grew", ns: pns(), status: pw.localQueryResult().status });

  unsubPages();
  unsubscribe();
  await client.close();
});
