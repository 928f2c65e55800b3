// Convex values as the dashboard shows and reads them.
//
// The dashboard keeps values in Convex's wire JSON ({"$integer": b64} for int64, {"$float": b64}
// for NaN, ±Infinity and -0, {"$bytes": b64} for bytes) and shows them as JSON5 text where an
// int64 is written `123n` and special floats as NaN, Infinity, -Infinity, -0. `parse` reads
// that text (comments, unquoted keys, single quotes and trailing commas allowed) back into wire
// JSON, so what a person types goes to the server as Convex values.

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

// -- int64 and float64 specials <-> base64 -------------------------------------------------

function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function encodeInt64(n) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigInt64(0, BigInt.asIntN(64, n), true);
  return { $integer: toBase64(new Uint8Array(view.buffer)) };
}

export function decodeInt64(b64) {
  const bytes = fromBase64(b64);
  return new DataView(bytes.buffer).getBigInt64(0, true);
}

export function encodeFloat(x) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x, true);
  return { $float: toBase64(new Uint8Array(view.buffer)) };
}

function decodeFloat(b64) {
  return new DataView(fromBase64(b64).buffer).getFloat64(0, true);
}

/** A plain JS number as wire JSON. */
export function number(x) {
  return Number.isFinite(x) && !Object.is(x, -0) ? x : encodeFloat(x);
}

function special(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1 || typeof value[keys[0]] !== "string") return null;
  return ["$integer", "$float", "$bytes"].includes(keys[0]) ? keys[0] : null;
}

function floatText(x) {
  if (Number.isNaN(x)) return "NaN";
  if (Object.is(x, -0)) return "-0";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  return String(x);
}

// -- formatting ------------------------------------------------------------------------------

/** `value` (wire JSON) as JSON5 text; `indent` > 0 spreads objects and arrays over lines. */
export function format(value, indent = 2, depth = 0) {
  const kind = special(value);
  if (kind === "$integer") return `${decodeInt64(value.$integer)}n`;
  if (kind === "$float") return floatText(decodeFloat(value.$float));
  if (kind === "$bytes") return `{ $bytes: ${JSON.stringify(value.$bytes)} }`;
  if (value === null || typeof value !== "object") {
    return typeof value === "number" ? floatText(value) : JSON.stringify(value);
  }
  const pad = indent ? "\n" + " ".repeat(indent * (depth + 1)) : " ";
  const end = indent ? "\n" + " ".repeat(indent * depth) : " ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((v) => format(v, indent, depth + 1));
    return indent ? `[${pad}${items.join("," + pad)},${end}]` : `[${items.join(", ")}]`;
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return "{}";
  const items = keys.map((k) => `${IDENT.test(k) ? k : JSON.stringify(k)}: ${format(value[k], indent, depth + 1)}`);
  return indent ? `{${pad}${items.join("," + pad)},${end}}` : `{ ${items.join(", ")} }`;
}

/** A short one-line rendering for a table cell. */
export function cell(value, max = 80) {
  const kind = special(value);
  if (kind === "$bytes") return `bytes(${fromBase64(value.$bytes).length})`;
  if (typeof value === "string") return value.length > max ? value.slice(0, max) + "…" : value;
  const text = format(value, 0);
  return text.length > max ? text.slice(0, max) + "…" : text;
}

/** The kind of a wire value, for a cell's styling. */
export function kindOf(value) {
  const kind = special(value);
  if (kind === "$integer") return "int64";
  if (kind === "$float") return "number";
  if (kind === "$bytes") return "bytes";
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

// -- parsing JSON5 (+ `123n`) into wire JSON -------------------------------------------------

export class ParseError extends Error {}

/** Read JSON5 text as wire JSON; throws ParseError naming the line and column. */
export function parse(text) {
  const p = new Parser(text);
  p.space();
  const value = p.value();
  p.space();
  if (p.i < text.length) p.fail("unexpected text after the value");
  return value;
}

class Parser {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }

  fail(message) {
    const before = this.s.slice(0, this.i);
    const line = before.split("\n").length;
    const col = this.i - before.lastIndexOf("\n");
    throw new ParseError(`${message} (line ${line}, column ${col})`);
  }

  space() {
    const s = this.s;
    for (;;) {
      while (this.i < s.length && /\s/.test(s[this.i])) this.i++;
      if (s.startsWith("//", this.i)) {
        const nl = s.indexOf("\n", this.i);
        this.i = nl < 0 ? s.length : nl + 1;
      } else if (s.startsWith("/*", this.i)) {
        const close = s.indexOf("*/", this.i + 2);
        if (close < 0) this.fail("unclosed /* comment");
        this.i = close + 2;
      } else {
        return;
      }
    }
  }

  value() {
    const c = this.s[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"' || c === "'") return this.string();
    if (c === undefined) this.fail("a value is missing");
    const word = /^(true|false|null)\b/.exec(this.s.slice(this.i));
    if (word) {
      this.i += word[0].length;
      return { true: true, false: false, null: null }[word[0]];
    }
    return this.number();
  }

  number() {
    const rest = this.s.slice(this.i);
    const m = /^[+-]?(?:Infinity|NaN|0[xX][0-9a-fA-F]+n?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?n?)/.exec(rest);
    if (!m) this.fail(`unexpected ${JSON.stringify(rest[0])}`);
    this.i += m[0].length;
    let t = m[0];
    if (t.endsWith("n")) {
      if (/[.eE]/.test(t.replace(/^[+-]?0[xX]/, "")) && !/^[+-]?0[xX]/.test(t)) {
        this.fail(`${t}: an int64 (…n) is a whole number`);
      }
      const negative = t.startsWith("-");
      t = t.replace(/^[+-]/, "").slice(0, -1);
      const n = negative ? -BigInt(t) : BigInt(t);
      if (n < -(2n ** 63n) || n >= 2n ** 63n) this.fail(`${m[0]} does not fit in an int64`);
      return encodeInt64(n);
    }
    const sign = t.startsWith("-") ? -1 : 1;
    const body = t.replace(/^[+-]/, "");
    let x;
    if (body === "Infinity") x = Infinity;
    else if (body === "NaN") x = NaN;
    else if (/^0[xX]/.test(body)) x = parseInt(body, 16);
    else x = Number(body);
    return number(sign * x);
  }

  string() {
    const quote = this.s[this.i++];
    let out = "";
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) this.fail("unclosed string");
      if (c === quote) return out;
      if (c === "\n") this.fail("a line break inside a string (write \\n)");
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      const simple = { n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", v: "\v", 0: "\0", "\n": "" };
      if (e in simple) out += simple[e];
      else if (e === "u") {
        const hex = this.s.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("\\u needs 4 hex digits");
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 4;
      } else if (e === "x") {
        const hex = this.s.slice(this.i, this.i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) this.fail("\\x needs 2 hex digits");
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 2;
      } else out += e;
    }
  }

  key() {
    const c = this.s[this.i];
    if (c === '"' || c === "'") return this.string();
    const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(this.s.slice(this.i));
    if (!m) this.fail("expected a field name");
    this.i += m[0].length;
    return m[0];
  }

  object() {
    this.i++;
    const out = {};
    for (;;) {
      this.space();
      if (this.s[this.i] === "}") {
        this.i++;
        return out;
      }
      const k = this.key();
      this.space();
      if (this.s[this.i] !== ":") this.fail(`expected ':' after ${JSON.stringify(k)}`);
      this.i++;
      this.space();
      if (Object.prototype.hasOwnProperty.call(out, k)) this.fail(`field ${JSON.stringify(k)} appears twice`);
      out[k] = this.value();
      this.space();
      if (this.s[this.i] === ",") this.i++;
      else if (this.s[this.i] !== "}") this.fail("expected ',' or '}'");
    }
  }

  array() {
    this.i++;
    const out = [];
    for (;;) {
      this.space();
      if (this.s[this.i] === "]") {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.space();
      if (this.s[this.i] === ",") this.i++;
      else if (this.s[this.i] !== "]") this.fail("expected ',' or ']'");
    }
  }
}
