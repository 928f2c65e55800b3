// npm ConvexClient across `pyconvex dev` hot reloads (driven by tests/cli/test_dev_e2e.py):
// it subscribes to a query, and after each edit the test sends on stdin the value the query
// should show now; the subscription must show it without the client reconnecting.
//   args: <query path> [<second query path>]  (the second may not exist yet: it starts failing)
import { ConvexClient } from "convex/browser";
import { out, until, run, url, stdinLines, extraArgs, enc } from "./lib.mjs";

run(async () => {
  const nextLine = stdinLines();
  const client = new ConvexClient(url);
  const [path, laterPath] = extraArgs;
  const values = [];
  const later = [];
  client.onUpdate(path, {}, (v) => values.push(enc(v)), (e) => values.push({ error: String(e) }));
  if (laterPath) {
    client.onUpdate(laterPath, {}, (v) => later.push(enc(v)), (e) => later.push({ error: String(e) }));
  }
  const state = () => JSON.stringify({ values, later, connection: client.connectionState() });
  await until(() => values.length >= 1 && (!laterPath || later.length >= 1), "first results", 15000, state);
  out({ event: "first", value: values.at(-1), later: later.at(-1), connection: client.connectionState() });
  for (;;) {
    const line = await nextLine();
    if (line === "end") break;
    const want = JSON.parse(line);
    await until(
      () =>
        JSON.stringify(values.at(-1)) === JSON.stringify(want.value) &&
        (want.later === undefined || JSON.stringify(later.at(-1)) === JSON.stringify(want.later)),
      `subscriptions to show ${line}`,
      20000,
      state,
    );
    out({ event: "shown", value: values.at(-1), later: later.at(-1), connection: client.connectionState() });
  }
  await client.close();
}, 120000);
