// Runs the npm `solc` package (solcjs) on a standard-JSON input read from stdin and writes the
// standard-JSON output to stdout. Used by ledger/compiler.py when no native solc is installed.
// (`solcjs --standard-json` itself calls process.exit() before a piped stdout is flushed, which
// truncates large outputs at 64 KiB, and prints a non-JSON line first.)
"use strict";
const solcPath = process.argv[2];
if (!solcPath) {
  process.stderr.write("usage: node solcjs_standard_json.js <path to node_modules/solc>\n");
  process.exitCode = 2;
} else {
  const solc = require(solcPath);
  const chunks = [];
  process.stdin.on("data", (chunk) => chunks.push(chunk));
  process.stdin.on("end", () => {
    const output = solc.compile(Buffer.concat(chunks).toString("utf8"));
    process.stdout.write(output); // no process.exit(): let Node flush the pipe
  });
}
