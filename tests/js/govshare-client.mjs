#!/usr/bin/env node
// An independent govshare client, written from docs/PROTOCOL.md and the test vectors alone.
//
//   node tests/js/govshare-client.mjs vectors [--dir tests/protocol/vectors]
//   GOVSHARE_JS_PRIVATE_KEY=0x… node tests/js/govshare-client.mjs live --contracts deployments/1337.contracts.json \
//        --manifest deployments/1337.json --rpc http://127.0.0.1:8545 --oracle http://127.0.0.1:8700 \
//        --grant 1 --params '{"company_id": "…"}' [--anchor-timeout 45]
//
// Prints one JSON line per check ({"check", "ok", "detail"}), then a JSON summary line and
// "N passed, N failed"; exits 1 if any check failed (2 for a usage error). The requester's key comes
// only from the environment (GOVSHARE_JS_PRIVATE_KEY), never from the command line.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkVectors } from "./vectors.mjs";
import { live } from "./live.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

function options(argv) {
  const out = {};
  for (let k = 0; k < argv.length; k++) {
    if (!argv[k].startsWith("--")) throw new Error(`unexpected argument ${argv[k]}`);
    out[argv[k].slice(2)] = argv[++k];
  }
  return out;
}

function reporter() {
  const results = { passed: 0, failed: 0 };
  const emit = (name, ok, detail) => {
    results[ok ? "passed" : "failed"]++;
    process.stdout.write(JSON.stringify({ check: name, ok, ...(detail === undefined ? {} : { detail }) }) + "\n");
  };
  const check = (name, fn) => {
    try {
      const out = fn();
      if (out === true) emit(name, true);
      else emit(name, false, out === false || out === undefined ? "mismatch" : String(out));
      return out === true;
    } catch (exc) {
      emit(name, false, `${exc.name}: ${exc.message}`);
      return false;
    }
  };
  const checkAsync = async (name, fn) => {
    try {
      const out = await fn();
      if (out === true) emit(name, true);
      else emit(name, false, out === false || out === undefined ? "mismatch" : String(out));
      return out === true;
    } catch (exc) {
      emit(name, false, `${exc.name}: ${exc.message}`);
      return false;
    }
  };
  return { results, check, checkAsync, emit };
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  let opts;
  try {
    opts = options(rest);
  } catch (exc) {
    process.stderr.write(`${exc.message}\n`);
    return 2;
  }
  const r = reporter();
  if (command === "vectors") {
    checkVectors(opts.dir ?? path.join(here, "..", "protocol", "vectors"), r.check);
  } else if (command === "live") {
    const key = process.env.GOVSHARE_JS_PRIVATE_KEY;
    const missing = ["contracts", "manifest", "rpc", "oracle", "grant", "params"].filter((k) => opts[k] === undefined);
    if (!key || missing.length) {
      process.stderr.write(`live needs GOVSHARE_JS_PRIVATE_KEY and --${missing.join(", --")}\n`);
      return 2;
    }
    await live({ ...opts, key, contracts: JSON.parse(fs.readFileSync(opts.contracts, "utf8")),
      manifest: JSON.parse(fs.readFileSync(opts.manifest, "utf8")) }, r);
  } else {
    process.stderr.write("usage: govshare-client.mjs vectors [--dir DIR] | live --contracts F --manifest F --rpc URL --oracle URL --grant N --params JSON\n");
    return 2;
  }
  process.stdout.write(JSON.stringify({ summary: r.results }) + "\n");
  process.stdout.write(`${r.results.passed} passed, ${r.results.failed} failed\n`);
  return r.results.failed === 0 && r.results.passed > 0 ? 0 : 1;
}

process.exitCode = await main();
