// A commit that changes 20 subscribed results at once, over a server whose Transitions carry
// at most 64 KiB: the update arrives as several Transitions at one ts (only the last moving
// the version). The npm ConvexClient must end with every result current.
import { ConvexClient } from "convex/browser";
import { out, until, run, url } from "./lib.mjs";

const N = 20;

run(async () => {
  const client = new ConvexClient(url);
  const values = new Map();
  for (let i = 0; i < N; i++) {
    client.onUpdate("split:blob", { slot: i, size: 10000 }, (v) => values.set(i, v));
  }
  const counts = () => [...values.values()].map((v) => Number(v.split(":")[1]));
  await until(() => values.size === N, "every first result", 20000);
  const before = Math.max(...counts());
  out({ step: "subscribed", before });
  await client.mutation("split:send", { body: "npm" });
  await until(
    () => counts().length === N && counts().every((c) => c === before + 1),
    "every result after the commit",
    20000,
    () => JSON.stringify(counts()),
  );
  out({ step: "updated", counts: counts() });
  await client.close();
});
