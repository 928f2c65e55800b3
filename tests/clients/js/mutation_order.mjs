// The order of a mutation's MutationResponse and the Transition that carries its write, as the
// official ConvexReactClient (convex/react) sees it, with optimistic updates: first one
// mutation, then 32 in flight at once on the one socket. Every frame the socket receives is
// recorded (a `ws` subclass listens before the client does), and every list watchQuery
// delivers is checked for an item shown twice (the optimistic one next to the real one).
import { ConvexReactClient } from "convex/react";
import WebSocket from "ws";
import { out, until, run, url } from "./lib.mjs";

const frames = [];

class RecordingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args);
    this.on("message", (data) => frames.push(JSON.parse(data.toString())));
  }
}

/** What the test needs of each received frame, in arrival order. */
function summary(frame) {
  if (frame.type === "MutationResponse") {
    return { type: frame.type, requestId: frame.requestId, success: frame.success, ts: frame.ts, id: frame.result };
  }
  if (frame.type === "Transition") {
    const ids = [];
    for (const m of frame.modifications) {
      if (m.type === "QueryUpdated" && Array.isArray(m.value)) ids.push(...m.value.map((d) => d._id));
    }
    return { type: frame.type, endTs: frame.endVersion.ts, ids };
  }
  return { type: frame.type };
}

run(async () => {
  const client = new ConvexReactClient(url, { webSocketConstructor: RecordingWebSocket });
  const author = `order-${process.pid}`;
  const args = { author };
  const watch = client.watchQuery("messages:list", args);
  const seen = [];
  const unsubscribe = watch.onUpdate(() => {
    const docs = watch.localQueryResult();
    if (docs !== undefined) seen.push(docs.map((d) => d.body));
  });
  await until(() => watch.localQueryResult() !== undefined, "watchQuery first result");

  const send = (body) =>
    client.mutation(
      "messages:send",
      { author, body },
      {
        optimisticUpdate: (localStore, mutationArgs) => {
          const current = localStore.getQuery("messages:list", args);
          if (current !== undefined) {
            localStore.setQuery("messages:list", args, [
              ...current,
              { _id: `temp-${mutationArgs.body}`, _creationTime: 0, author, body: mutationArgs.body },
            ]);
          }
        },
      },
    );

  await send("one");
  const burst = [];
  for (let i = 0; i < 32; i++) burst.push(`burst-${i}`);
  const ids = await Promise.all(burst.map(send));
  const final = watch.localQueryResult().map((d) => d.body);

  const twice = seen.filter((bodies) => new Set(bodies).size !== bodies.length);
  out({ step: "updates", count: seen.length, twice, final, ids });
  await until(() => frames.length > 0, "frames");
  out({ step: "frames", frames: frames.map(summary) });
  unsubscribe();
  await client.close();
});
