// Round-trips Convex values (int64, bytes, NaN, ±inf, -0.0, nesting) through the echo query,
// mutation and action with both npm clients; the test compares the Convex-encoded JSON.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { out, enc, run, url, specialValues } from "./lib.mjs";

run(async () => {
  const value = specialValues();
  out({ step: "sent", value: enc(value) });

  const ws = new ConvexClient(url);
  out({ client: "ws", kind: "query", value: enc(await ws.query("messages:echo", { value })) });
  out({ client: "ws", kind: "mutation", value: enc(await ws.mutation("messages:echo_mutation", { value })) });
  out({ client: "ws", kind: "action", value: enc(await ws.action("messages:echo_action", { value })) });
  // Subscription path too (QueryUpdated rather than a one-shot query).
  const subValue = await new Promise((resolve) => {
    const unsub = ws.onUpdate("messages:echo", { value: { sub: value } }, (v) => {
      unsub();
      resolve(v);
    });
  });
  out({ client: "ws", kind: "subscription", value: enc(subValue.sub) });
  await ws.close();

  const http = new ConvexHttpClient(url);
  out({ client: "http", kind: "query", value: enc(await http.query("messages:echo", { value })) });
  out({ client: "http", kind: "mutation", value: enc(await http.mutation("messages:echo_mutation", { value })) });
  out({ client: "http", kind: "action", value: enc(await http.action("messages:echo_action", { value })) });
});
