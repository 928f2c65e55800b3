// npm ConvexClient (convex/browser, WebSocket): subscribe → mutate → update, read-your-writes,
// ConvexError from a mutation and from a query subscription, one-shot query, actions.
import { ConvexClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { out, enc, until, rejectionOf, run, url } from "./lib.mjs";

run(async () => {
  const client = new ConvexClient(url);
  const author = `browser-${process.pid}`;

  // Subscribe, then mutate and see the update arrive.
  const updates = [];
  const sub = client.onUpdate("messages:list", { author }, (docs) => updates.push(docs));
  const state = () => JSON.stringify({ updates: updates.length, last: enc(updates.at(-1) ?? null) });
  await until(() => updates.length >= 1, "first result of messages:list", 10000, state);
  out({ step: "initial", docs: enc(updates[0]) });

  const id = await client.mutation("messages:send", { author, body: "hello" });
  // Read-your-writes: the result is visible no later than the mutation resolves.
  const atResolve = sub.getCurrentValue();
  out({ step: "mutation_resolved", id, current: enc(atResolve ?? null) });
  await until(() => updates.at(-1).length === 1, "subscription update after messages:send", 10000, state);
  out({ step: "update", docs: enc(updates.at(-1)), updates: updates.length });

  // A second mutation: another update on the same subscription.
  await client.mutation("messages:send", { author, body: "again" });
  await until(() => updates.at(-1).length === 2, "second subscription update", 10000, state);
  out({ step: "update2", bodies: updates.at(-1).map((d) => d.body) });

  // ConvexError from a mutation.
  const err = await rejectionOf(client.mutation("messages:fail", {}), "messages:fail");
  out({
    step: "mutation_error",
    isConvexError: err instanceof ConvexError,
    data: enc(err.data ?? null),
    message: String(err.message),
  });

  // ConvexError from a query subscription.
  let queryError = null;
  client.onUpdate(
    "messages:fail_query",
    {},
    () => {},
    (e) => {
      queryError = e;
    },
  );
  await until(() => queryError !== null, "error of messages:fail_query subscription", 10000, state);
  out({
    step: "query_error",
    isConvexError: queryError instanceof ConvexError,
    data: enc(queryError.data ?? null),
  });

  // One-shot query and actions.
  const count = await client.query("messages:list", { author });
  out({ step: "query", count: count.length });
  const viaAction = await client.action("messages:send_via_action", { author, body: "from action" });
  out({ step: "action", result: enc(viaAction) });
  await until(() => updates.at(-1).length === 3, "update after the action's mutation", 10000, state);
  out({ step: "update3", bodies: updates.at(-1).map((d) => d.body) });

  sub.unsubscribe();
  await client.close();
});
