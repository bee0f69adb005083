// Canonical JSON and an exact JSON parser, written from docs/PROTOCOL.md §4 (not from govshare's code).
//
// Values in this module: null, true/false, BigInt (every JSON integer), strings, arrays, and
// objects with a null prototype (so "__proto__" is an ordinary key). A JSON number with a fraction
// or an exponent parses to a JsonFloat, which canonicalJson() refuses, as the spec does.

export class CanonicalError extends Error {}

export class JsonFloat {
  constructor(text) {
    this.text = text;
  }
}

/** Parse JSON text exactly: integers of any size as BigInt, floats kept as JsonFloat, strings
 * with their escapes decoded (lone surrogates let through: canonicalJson refuses them), duplicate
 * keys refused. Throws SyntaxError on anything that is not one JSON value. */
export function parseJson(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const fail = (what) => {
    throw new SyntaxError(`JSON: ${what} at offset ${i}`);
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail("unexpected character");
  };
  const object = () => {
    i++;
    const out = Object.create(null);
    ws();
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a key");
      const key = string();
      if (Object.prototype.hasOwnProperty.call(out, key)) fail(`duplicate key ${JSON.stringify(key)}`);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      out[key] = value();
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return out;
      }
      fail("expected ',' or '}'");
    }
  };
  const array = () => {
    i++;
    const out = [];
    ws();
    if (text[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value());
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return out;
      }
      fail("expected ',' or ']'");
    }
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text[i];
      const code = c.charCodeAt(0);
      if (c === '"') {
        i++;
        return out;
      }
      if (code < 0x20) fail("raw control character in a string");
      if (c !== "\\") {
        out += c;
        i++;
        continue;
      }
      const e = text[i + 1];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (e === "u") {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        fail("bad escape");
      }
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail("bad number");
    i += m[0].length;
    if (m[2] !== undefined || m[3] !== undefined) return new JsonFloat(m[0]);
    return BigInt(m[0]);
  };
  const result = value();
  ws();
  if (i !== text.length) fail("trailing characters");
  return result;
}

/** Compare two strings by Unicode code points (the canonical key order). */
export function compareCodePoints(a, b) {
  const ca = Array.from(a, (ch) => ch.codePointAt(0));
  const cb = Array.from(b, (ch) => ch.codePointAt(0));
  const n = Math.min(ca.length, cb.length);
  for (let k = 0; k < n; k++) {
    if (ca[k] !== cb[k]) return ca[k] < cb[k] ? -1 : 1;
  }
  return ca.length - cb.length;
}

function checkScalarValues(s) {
  for (let k = 0; k < s.length; k++) {
    const u = s.charCodeAt(k);
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = s.charCodeAt(k + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        k++;
        continue;
      }
      throw new CanonicalError("a string holds a lone high surrogate");
    }
    if (u >= 0xdc00 && u <= 0xdfff) throw new CanonicalError("a string holds a lone low surrogate");
  }
}

const SHORT = { 0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x09: "\\t", 0x0a: "\\n", 0x0c: "\\f", 0x0d: "\\r" };

function writeString(s) {
  checkScalarValues(s);
  let out = '"';
  for (let k = 0; k < s.length; k++) {
    const u = s.charCodeAt(k);
    if (SHORT[u] !== undefined) out += SHORT[u];
    else if (u < 0x20) out += "\\u" + u.toString(16).padStart(4, "0");
    else out += s[k];
  }
  return out + '"';
}

/** The canonical JSON text of a value (docs/PROTOCOL.md §4); throws CanonicalError for anything
 * that has no canonical form. JavaScript numbers are accepted only as safe integers. */
export function canonicalJson(value) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new CanonicalError(`number ${value} is not a safe integer`);
    return BigInt(value).toString();
  }
  if (typeof value === "string") return writeString(value);
  if (value instanceof JsonFloat) throw new CanonicalError(`float ${value.text} is not canonical`);
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(compareCodePoints);
    return "{" + keys.map((k) => writeString(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  throw new CanonicalError(`a ${typeof value} has no canonical JSON form`);
}

/** The UTF-8 bytes of the canonical JSON of a value (what is hashed). */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalJson(value));
}

/** A plain object (null prototype) from entries: for building values to canonicalise. */
export function obj(entries) {
  const out = Object.create(null);
  for (const [k, v] of Object.entries(entries)) out[k] = v;
  return out;
}
