// Hardhat 2 configuration for govshare.
//
// The compiler version and the bytecode-relevant settings are read from contracts/compiler.json,
// the same file ledger/compiler.py reads, so `npx hardhat compile` and the Python compiler produce
// identical bytecode (tests/ledger/test_compiler.py checks this).
//
// Compilation is fully offline: for the pinned version the solc build is the npm package `solc`
// (solcjs, node_modules/solc/soljson.js) instead of a binary Hardhat would download.
"use strict";

const fs = require("fs");
const path = require("path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

// No interactive telemetry prompt (CI and `make` have no usable stdin).
if (process.env.HARDHAT_DISABLE_TELEMETRY_PROMPT === undefined) {
  process.env.HARDHAT_DISABLE_TELEMETRY_PROMPT = "true";
}

const compilerConfig = JSON.parse(
  fs.readFileSync(path.join(__dirname, "contracts", "compiler.json"), "utf8"),
);

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion === compilerConfig.version) {
    const solcPackage = require("solc/package.json");
    if (solcPackage.version !== compilerConfig.version) {
      throw new Error(
        `node_modules/solc is ${solcPackage.version} but contracts/compiler.json pins ` +
          `${compilerConfig.version}; run \`npm ci\``,
      );
    }
    return {
      compilerPath: require.resolve("solc/soljson.js"),
      isSolcJs: true,
      version: compilerConfig.version,
      longVersion: compilerConfig.longVersion,
    };
  }
  return runSuper(args);
});

// Where artifacts and cache go: build/hardhat (gitignored), or GOVSHARE_HARDHAT_BUILD_DIR (the
// tests compile into a temporary directory so they never disturb a developer's build/).
const buildDir = process.env.GOVSHARE_HARDHAT_BUILD_DIR || "./build/hardhat";

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: compilerConfig.version,
    settings: compilerConfig.settings,
  },
  paths: {
    root: __dirname,
    sources: "./contracts",
    artifacts: path.join(buildDir, "artifacts"),
    cache: path.join(buildDir, "cache"),
  },
};
