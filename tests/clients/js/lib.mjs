// Shared helpers for the client conformance scripts.
//
// Every script is run as `node <script>.mjs <deployment URL> [args...]` by tests/clients/*.py.
// It prints one "@@"-prefixed JSON object per line on stdout (the test asserts on them), exits 0 on success
// and non-zero on any failure or when its overall time limit is reached.
import { convexToJson } from "convex/values";

export const url = process.argv[2];
if (!url) {
  console.error("usage: node script.mjs <deployment url> [args...]");
  process.exit(64);
}
export const extraArgs = process.argv.slice(3);

/**
 * Print one result line: "@@" + JSON (the client also prints function log lines to stdout).
 * Values inside are Convex-encoded with `enc` so bigint/bytes/NaN/-0 survive.
 */
export function out(obj) {
  process.stdout.write("@@" + JSON.stringify(obj) + "\n");
}

/** Convex-encode a value for printing. */
export function enc(value) {
  return convexToJson(value);
}

/**
 * Resolve once `cond()` is truthy; reject with `label` after `ms` (plus `describe()`, the state
 * the script was in, so a failure shows what the client had instead).
 */
export function until(cond, label, ms = 10000, describe = undefined) {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      let value;
      try {
        value = cond();
      } catch (e) {
        reject(e);
        return;
      }
      if (value) {
        resolve(value);
      } else if (Date.now() - start > ms) {
        let state = "";
        try {
          state = describe ? ` (client state: ${describe()})` : "";
        } catch (e) {
          state = ` (describe failed: ${e})`;
        }
        reject(new Error(`timed out after ${ms} ms waiting for: ${label}${state}`));
      } else {
        setTimeout(tick, 5);
      }
    };
    tick();
  });
}

/** Resolve with the rejection of `promise` (fails if it resolves). */
export async function rejectionOf(promise, label) {
  try {
    const value = await promise;
    throw new Error(`${label}: expected an error, got ${JSON.stringify(enc(value))}`);
  } catch (e) {
    return e;
  }
}

/** Read lines from stdin one by one (the test drives multi-phase scripts this way). */
export function stdinLines() {
  const queue = [];
  const waiters = [];
  let buffer = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else queue.push(line);
    }
  });
  return () =>
    new Promise((resolve) => {
      const line = queue.shift();
      if (line !== undefined) resolve(line);
      else waiters.push(resolve);
    });
}

/** Run `main` under an overall time limit; print the error and exit non-zero on failure. */
export function run(main, limitMs = 60000) {
  const timer = setTimeout(() => {
    out({ error: `overall time limit of ${limitMs} ms reached` });
    process.exit(3);
  }, limitMs);
  main().then(
    () => {
      clearTimeout(timer);
      out({ done: true });
      process.exit(0);
    },
    (e) => {
      clearTimeout(timer);
      out({ error: String(e && e.stack ? e.stack : e), name: e && e.name });
      process.exit(1);
    },
  );
}

/** Values every client must round-trip exactly (compared Convex-encoded by the test). */
export function specialValues() {
  return {
    int: 123n,
    negInt: -1n,
    bigInt: 2n ** 62n + 7n,
    minInt: -(2n ** 63n),
    bytes: new Uint8Array([0, 1, 2, 254, 255]).buffer,
    emptyBytes: new ArrayBuffer(0),
    nan: NaN,
    inf: Infinity,
    negInf: -Infinity,
    negZero: -0,
    zero: 0,
    float: 1.5,
    intFloat: 7,
    str: "héllo ✓",
    bool: false,
    nil: null,
    arr: [1, "two", null, 3n, [true]],
    nested: { a: { b: [new Uint8Array([9]).buffer, -0] } },
  };
}
