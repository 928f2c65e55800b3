// Several npm ConvexClients on `ws`, which offers permessage-deflate (as browsers do), and one
// that does not, subscribed to the same query: every write reaches all of them with the same
// result (the server sends the fan-out's shared frame compressed, once for all).
import WebSocket from "ws";
import { ConvexClient } from "convex/browser";
import { out, until, run, url } from "./lib.mjs";

class PlainWebSocket extends WebSocket {
  constructor(address, protocols, options) {
    super(address, protocols, { ...options, perMessageDeflate: false });
  }
}

run(async () => {
  const author = `deflate-${process.pid}`;
  const constructors = [WebSocket, WebSocket, WebSocket, PlainWebSocket];
  const clients = constructors.map((ctor) => new ConvexClient(url, { webSocketConstructor: ctor }));
  const latest = clients.map(() => null);
  clients.forEach((client, i) =>
    client.onUpdate("messages:list", { author }, (docs) => {
      latest[i] = docs;
    }),
  );
  const state = () => JSON.stringify(latest.map((docs) => docs?.length ?? null));
  await until(() => latest.every((docs) => docs !== null), "every client's first result", 15000, state);
  const body = (n) => `message ${n}: ` + "the quick brown fox jumps over the lazy dog ".repeat(10);
  for (let n = 0; n < 5; n++) {
    await clients[n % clients.length].mutation("messages:send", { author, body: body(n) });
  }
  await until(() => latest.every((docs) => docs.length === 5), "every client sees 5 messages", 15000, state);
  out({
    step: "seen",
    bodies: latest.map((docs) => docs.map((d) => d.body)),
    expected: [0, 1, 2, 3, 4].map(body),
  });
  await Promise.all(clients.map((client) => client.close()));
});
