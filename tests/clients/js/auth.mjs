// Sign-in with the npm clients: ConvexClient.setAuth with a valid token (onChange(true), the
// query runs as the user) and with a refused one (onChange(false), back to anonymous);
// ConvexReactClient with a token that expires mid-session (the client fetches a fresh one and
// the user stays signed in); ConvexHttpClient.setAuth (a Bearer token: the query runs as the
// user; a refused token rejects with the reason). Tokens come from argv (signed by the test's
// issuer): good, bad, short-lived, fresh...
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { ConvexReactClient } from "convex/react";
import WebSocket from "ws";
import { out, until, run, url, extraArgs } from "./lib.mjs";

const [good, bad, short, ...fresh] = extraArgs;

run(async () => {
  // 1. Accepted.
  const client = new ConvexClient(url);
  const changes = [];
  client.setAuth(async () => good, (ok) => changes.push(ok));
  const seen = [];
  client.onUpdate("who:whoami", {}, (v) => seen.push(v));
  await until(() => changes.includes(true), "onChange(true)");
  await until(() => seen.at(-1)?.subject === "ada", "whoami as ada", 10000, () => JSON.stringify(seen));
  out({ step: "accepted", changes, who: seen.at(-1) });
  await client.close();

  // 2. Refused.
  const refused = new ConvexClient(url);
  const refusedChanges = [];
  refused.setAuth(async () => bad, (ok) => refusedChanges.push(ok));
  const anon = [];
  refused.onUpdate("who:whoami", {}, (v) => anon.push(v));
  await until(() => refusedChanges.includes(false), "onChange(false)", 15000, () => JSON.stringify(refusedChanges));
  await until(() => anon.length > 0 && anon.at(-1) === null, "whoami anonymous after refusal");
  out({ step: "refused", changes: refusedChanges, who: anon.at(-1) });
  await refused.close();

  // 3. Expiring mid-session (React client).
  const react = new ConvexReactClient(url, { webSocketConstructor: WebSocket });
  const tokens = [short, ...fresh];
  const fetched = [];
  const reactChanges = [];
  react.setAuth(
    async ({ forceRefreshToken }) => {
      const token = tokens.length > 1 ? tokens.shift() : tokens[0];
      fetched.push(forceRefreshToken);
      return token;
    },
    (ok) => reactChanges.push(ok),
  );
  const watch = react.watchQuery("who:whoami", {});
  let last;
  watch.onUpdate(() => {
    last = watch.localQueryResult();
  });
  await until(() => reactChanges.includes(true), "react onChange(true)");
  // The short token expires after ~3 s; keep watching past that.
  await new Promise((r) => setTimeout(r, 6000));
  await until(() => last?.subject === "ada", "still ada after the expiry", 10000, () => JSON.stringify({ last, fetched, reactChanges }));
  out({ step: "expired", fetched: fetched.length, changes: reactChanges, who: last });
  await react.close();

  // 4. Over HTTP (ConvexHttpClient sends Authorization: Bearer).
  const http = new ConvexHttpClient(url);
  http.setAuth(good);
  const viaHttp = await http.query("who:whoami", {});
  http.setAuth(bad);
  let refusal = null;
  try {
    await http.query("who:whoami", {});
  } catch (e) {
    refusal = String(e.message ?? e);
  }
  http.clearAuth();
  out({ step: "http", who: viaHttp, refusal, anonymous: await http.query("who:whoami", {}) });
});
