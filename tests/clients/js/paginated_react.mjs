// usePaginatedQuery (convex/react) in a real React render (react-test-renderer): the first page,
// loadMore to the end, then live inserts into the first page until it grows past twice
// `initialNumItems` and the hook splits it into two subscriptions at the server's splitCursor
// (and then splits the second half again). Every render and every message the client sends
// is recorded: the test checks that each render shows exactly the table's contents at some
// point, in order, and that the splits happened as Convex's client makes them.
import React from "react";
import TestRenderer from "react-test-renderer";
import { ConvexProvider, ConvexReactClient, usePaginatedQuery } from "convex/react";
import { makeFunctionReference } from "convex/server";
import WebSocket from "ws";
import { out, until, run, url } from "./lib.mjs";

const sent = [];

class RecordingWebSocket extends WebSocket {
  send(data, ...rest) {
    sent.push(JSON.parse(data.toString()));
    return super.send(data, ...rest);
  }
}

const paginated = makeFunctionReference("messages:paginated");
const renders = [];
let latest = null;

function Items({ tag }) {
  const result = usePaginatedQuery(paginated, { tag }, { initialNumItems: 3 });
  renders.push({ ns: result.results.map((d) => d.n), status: result.status });
  latest = result;
  return null;
}

/** Render inside act(); updates from the server arrive outside it, as in an app. */
function act(fn) {
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
  TestRenderer.act(fn);
  globalThis.IS_REACT_ACT_ENVIRONMENT = false;
}

/** The paginated subscriptions the client holds now: queryId -> paginationOpts. */
function pageQueries() {
  const live = new Map();
  for (const msg of sent) {
    if (msg.type !== "ModifyQuerySet") continue;
    for (const m of msg.modifications) {
      if (m.type === "Add" && m.udfPath === "messages:paginated") live.set(m.queryId, m.args[0].paginationOpts);
      if (m.type === "Remove") live.delete(m.queryId);
    }
  }
  return live;
}

run(async () => {
  const client = new ConvexReactClient(url, { webSocketConstructor: RecordingWebSocket });
  const tag = `react-split-${process.pid}`;
  const table = [];
  const add = async (n) => {
    await client.mutation("messages:add_item", { tag, n });
    table.push(n);
    table.sort((a, b) => a - b);
  };
  for (const n of [10, 20, 30, 40, 50]) await add(n);

  let renderer;
  act(() => {
    renderer = TestRenderer.create(React.createElement(ConvexProvider, { client }, React.createElement(Items, { tag })));
  });
  const ns = () => latest.results.map((d) => d.n);
  const state = () => JSON.stringify({ ns: ns(), status: latest.status, pages: [...pageQueries().values()] });

  await until(() => latest && latest.status === "CanLoadMore", "first page", 10000, state);
  out({ step: "first_page", ns: ns() });
  latest.loadMore(3);
  await until(() => latest.status === "Exhausted", "the last page", 10000, state);
  out({ step: "exhausted", ns: ns(), pages: pageQueries().size });

  // Each state of the table from here on, in order; renders are checked against them.
  const states = [[...table]];
  out({ step: "states_from", render: renders.length - 1 });
  for (const n of [11, 12, 13, 14, 21, 22, 23, 24]) {
    await add(n);
    states.push([...table]);
    await until(() => JSON.stringify(ns()) === JSON.stringify(table), `item ${n} to show`, 10000, state);
  }
  // Two splits: page one (7 items > 2 x 3) into two, then its second half once it grew too.
  const removals = () => sent.flatMap((m) => (m.type === "ModifyQuerySet" ? m.modifications : [])).filter((m) => m.type === "Remove").length;
  await until(() => removals() === 2 && pageQueries().size === 4, "the pages to split", 10000, state);
  await until(() => JSON.stringify(ns()) === JSON.stringify(table), "the final contents", 10000, state);
  out({ step: "states", states });
  out({ step: "renders", renders });
  out({ step: "pages", pages: [...pageQueries().values()] });
  out({
    step: "modifications",
    sets: sent
      .filter((m) => m.type === "ModifyQuerySet")
      .map((m) =>
        m.modifications.map((x) =>
          x.type === "Add" ? { type: "Add", queryId: x.queryId, opts: x.args[0].paginationOpts ?? null } : { type: x.type, queryId: x.queryId },
        ),
      ),
  });
  act(() => renderer.unmount());
  await client.close();
});
