// The error messages the official clients show for failed calls, to compare with Convex's
// texts: ConvexHttpClient's message is the server's text as it is; ConvexClient's wraps it as
// `[CONVEX M(path)] <text>\n  Called by client`.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { out, enc, rejectionOf, run, url } from "./lib.mjs";

run(async () => {
  const http = new ConvexHttpClient(url);
  const calls = {
    convex_error: () => http.mutation("messages:fail", {}),
    convex_error_values: () => http.mutation("messages:fail_with", { data: { s: "x", n: 7n, f: 100, g: 0.5 } }),
    convex_error_string: () => http.mutation("messages:fail_with", { data: "just a string" }),
    uncaught: () => http.query("messages:crash", {}),
    missing_field: () => http.mutation("messages:send", { author: "a" }),
    extra_field: () => http.mutation("messages:send", { author: "a", body: "b", extra: 1 }),
    wrong_type: () => http.mutation("messages:send", { author: 5, body: "b" }),
    returns: () => http.query("messages:bad_return", {}),
    not_found: () => http.query("messages:nope", {}),
  };
  for (const [step, call] of Object.entries(calls)) {
    const e = await rejectionOf(call(), step);
    out({ step, message: e.message, isConvexError: e instanceof ConvexError, data: e instanceof ConvexError ? enc(e.data) : null });
  }

  const ws = new ConvexClient(url);
  const e = await rejectionOf(ws.mutation("messages:fail", {}), "ws mutation");
  out({ step: "ws_convex_error", message: e.message, data: enc(e.data ?? null) });
  const q = await rejectionOf(ws.query("messages:crash", {}), "ws query");
  out({ step: "ws_uncaught", message: q.message });
  await ws.close();
});
