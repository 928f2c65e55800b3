// npm ConvexClient across server restarts (driven by the test over stdin/stdout):
//   phase 1: the server is stopped; a mutation issued while it is down is applied exactly once
//            after it comes back, and the subscription resumes with the new result;
//   phase 2: a burst of mutations is in flight while the server restarts; every one is applied
//            exactly once (the client re-sends unanswered and unreflected ones on reconnect).
import { ConvexClient } from "convex/browser";
import { out, until, run, url, stdinLines, extraArgs } from "./lib.mjs";

const BURST = Number(extraArgs[0] ?? 20);

run(async () => {
  const nextLine = stdinLines();
  const client = new ConvexClient(url);
  const author = `reconnect-${process.pid}`;
  const updates = [];
  client.onUpdate("messages:list", { author }, (docs) => updates.push(docs));
  const state = () =>
    JSON.stringify({
      bodies: (updates.at(-1) ?? []).map((d) => d.body),
      connection: client.connectionState(),
    });
  await until(() => updates.length >= 1, "first result", 15000, state);
  await client.mutation("messages:send", { author, body: "before" });
  await until(() => updates.at(-1).length === 1, "'before' visible", 15000, state);
  out({ event: "ready" });

  // Phase 1.
  const cmd = await nextLine();
  if (cmd !== "down") throw new Error(`expected 'down' on stdin, got ${JSON.stringify(cmd)}`);
  await until(() => !client.connectionState().isWebSocketConnected, "client to notice the server is gone", 15000, state);
  const pending = client.mutation("messages:send", { author, body: "while-down" });
  out({ event: "queued", state: client.connectionState() });
  const id = await pending; // resolves once the server is back and the write is reflected
  const bodiesAtResolve = updates.at(-1).map((d) => d.body);
  await until(() => updates.at(-1).length >= 2, "subscription to resume with 'while-down'", 30000, state);
  out({ event: "phase1", id, bodiesAtResolve, bodies: updates.at(-1).map((d) => d.body), connectionCount: client.connectionState().connectionCount });

  // Phase 2.
  const cmd2 = await nextLine();
  if (cmd2 !== "burst") throw new Error(`expected 'burst' on stdin, got ${JSON.stringify(cmd2)}`);
  const burst = [];
  for (let i = 0; i < BURST; i++) {
    burst.push(client.mutation("messages:send", { author, body: `burst-${i}` }));
  }
  out({ event: "burst_sent" });
  const ids = await Promise.all(burst);
  await until(() => updates.at(-1).length >= 2 + BURST, "every burst mutation in the subscription", 30000, state);
  // Let any duplicate application surface before counting.
  await new Promise((r) => setTimeout(r, 300));
  const fresh = await client.query("messages:list", { author });
  const counts = {};
  for (const d of fresh) counts[d.body] = (counts[d.body] ?? 0) + 1;
  out({ event: "phase2", distinctIds: new Set(ids).size, counts, subscriptionLength: updates.at(-1).length, connectionCount: client.connectionState().connectionCount });
  await client.close();
}, 90000);
