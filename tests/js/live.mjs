// The live check: a real exchange with a running oracle and chain, from docs/PROTOCOL.md alone.
//
// Reads the deployment's contracts file, signs queries with the requester's key, posts them to the
// oracle, verifies every receipt (§9.3), waits until the records are anchored, and checks each
// AuditRecordAppended event against its receipt (§10.4) and the oracle's hash chain (§10.5).
// Four queries: one served, its exact replay (NONCE_REPLAYED), one asking for a field outside the
// grant (FIELDS_NOT_GRANTED), and one with the high-s twin of a valid signature (BAD_SIGNATURE).

import crypto from "node:crypto";
import { ethers } from "ethers";
import { canonicalJson, parseJson } from "./canonical.mjs";
import * as P from "./protocol.mjs";

const random = (n) => "0x" + crypto.randomBytes(n).toString("hex");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function highS(signature) {
  const b = P.bytes(signature);
  const s = BigInt(P.hex(b.slice(32, 64)));
  return ethers.concat([b.slice(0, 32), ethers.zeroPadValue(ethers.toBeHex(N - s), 32), new Uint8Array([55 - b[64]])]);
}

async function post(url, body) {
  const answer = await fetch(url + "/v1/query", {
    method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body),
  });
  const text = await answer.text();
  return { status: answer.status, type: answer.headers.get("content-type"), data: parseJson(text) };
}

export async function live(opts, r) {
  const { contracts, manifest } = opts;
  const chainId = BigInt(contracts.chainId);
  const provider = new ethers.JsonRpcProvider(opts.rpc, Number(chainId), { staticNetwork: true, polling: false });
  try {
    await run(opts, r, contracts, manifest, chainId, provider);
  } finally {
    provider.destroy();
  }
}

async function run(opts, r, contracts, manifest, chainId, provider) {
  const c = (name) => new ethers.Contract(contracts.contracts[name].address, contracts.contracts[name].abi, provider);
  const [registry, catalog, grants, auditLog, queries] = ["ConsortiumRegistry", "DataCatalog", "AccessGrants", "AuditLog", "QueryRequests"].map(c);
  const queryRequests = contracts.contracts.QueryRequests.address;
  const auditLogAddress = contracts.contracts.AuditLog.address;
  const oracleUrl = opts.oracle.replace(/\/$/, "");
  const wallet = new ethers.Wallet(opts.key);
  const requester = wallet.address;
  const grantId = BigInt(opts.grant);
  const params = parseJson(opts.params);
  const fromBlock = Number(manifest.deployment_block);

  // §3: the deployment files describe the chain we talk to
  await r.checkAsync("deployment: contracts file, manifest and chain agree", async () => {
    const network = await provider.send("eth_chainId", []);
    if (BigInt(network) !== chainId || BigInt(manifest.chain_id) !== chainId) return `chain id ${network}`;
    for (const [name, { address }] of Object.entries(contracts.contracts)) {
      if (manifest.addresses[name] !== address) return `${name} address differs from the manifest`;
      const code = await provider.getCode(address);
      const sha = crypto.createHash("sha256").update(P.bytes(code)).digest("hex");
      if ("0x" + sha !== manifest.runtime_code_sha256[name]) return `${name}: runtime code hash differs`;
    }
    return true;
  });
  await r.checkAsync("EIP-712 domain separator equals QueryRequests.domainSeparator()", async () =>
    P.domainSeparator(chainId, queryRequests).separator === (await queries.domainSeparator()));

  const grant = await grants.grant(grantId);
  const datasetId = grant.datasetId;
  const dataset = await catalog.dataset(datasetId);
  const registered = await catalog.queryFilter(catalog.filters.DatasetRegistered(datasetId), fromBlock);
  const fieldNames = registered.length ? [...registered[0].args.fields] : [];
  const granted = fieldNames.filter((_, i) => (grant.fields >> BigInt(i)) & 1n);
  await r.checkAsync("the grant is for this requester's department and a registered dataset", async () =>
    (await registry.departmentOf(requester)) === grant.requesterDept && dataset.ownerDept === grant.ownerDept
    && fieldNames.length === Number(dataset.fieldCount) && granted.length > 0 || "grant, department or schema mismatch");

  // §12.2: the oracle's identity, and its role on chain
  const identity = parseJson(await (await fetch(oracleUrl + "/v1/identity")).text());
  const oracle = identity.oracle;
  await r.checkAsync("GET /v1/identity: the key is the oracle's, and it holds ORACLE of the owner", async () =>
    ethers.computeAddress("0x04" + identity.public_key.slice(2)) === oracle
    && (await registry.departmentWithRole(await registry.ORACLE_ROLE(), oracle)) === grant.ownerDept);

  const before = await auditLog.oracleState(oracle);
  const usedBefore = grant.used;
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 120);
  const sign = (fields, nonce = BigInt(random(32))) => P.signQuery(opts.key, {
    requesterDept: grant.requesterDept, datasetId, grantId, fields, params, paramsSalt: random(32), nonce, deadline,
  }, chainId, queryRequests);

  const exchanges = [];
  // §9.3: everything a requester checks in a receipt, for an expected outcome
  const verify = (name, body, answer, expect) => r.check(`${name}: reply and receipt`, () => {
    const errors = [];
    const { status, data, type } = answer;
    if (status !== expect.status) errors.push(`status ${status} (${data.title}: ${data.detail})`);
    const receipt = data.receipt;
    if (!receipt) return `no receipt: ${canonicalJson(data)}`;
    if (Object.keys(receipt).sort().join() !== [...P.RECEIPT_KEYS].sort().join()) errors.push("receipt keys");
    if (P.receiptSigner(receipt) !== oracle || receipt.oracle !== oracle) errors.push("receipt signer");
    if (receipt.record_id !== P.recordIdHex(P.recordId(oracle, receipt.sequence))) errors.push("record id");
    errors.push(...P.receiptBindingErrors(receipt)); // §9.4: record hash and chain head follow from its fields
    if (Number(receipt.outcome) !== expect.outcome || P.reasonName(receipt.reason) !== expect.reason) {
      errors.push(`outcome ${receipt.outcome} reason ${P.reasonName(receipt.reason)}`);
    }
    if (P.statusOf(receipt.outcome, receipt.reason) !== status) errors.push("status does not match the reason");
    if (receipt.requester !== expect.requester || receipt.grant_id !== expect.grantId || receipt.dataset_id !== expect.datasetId) {
      errors.push(`requester/grant/dataset ${receipt.requester} ${receipt.grant_id} ${receipt.dataset_id}`);
    }
    if (P.saltedHash(P.requestHashBody(body), receipt.request_salt) !== receipt.request_hash) errors.push("requestHash");
    if (expect.status === 200) {
      if (!type?.startsWith("application/json")) errors.push(`content type ${type}`);
      if (!Array.isArray(data.records) || data.records.length === 0) errors.push("no records");
      else if (data.records.some((rec) => Object.keys(rec).some((k) => !granted.includes(k)))) errors.push("a field outside the grant");
      if (P.saltedHash({ records: data.records }, receipt.response_salt) !== receipt.response_hash) errors.push("responseHash");
      if (receipt.dataset_version < 1n) errors.push("dataset version");
    } else {
      if (!type?.startsWith("application/problem+json")) errors.push(`content type ${type}`);
      if (data.reason !== expect.reason || data.title !== expect.reason || BigInt(data.status) !== BigInt(status)) errors.push("problem members");
      if (receipt.response_hash !== P.ZERO_HASH || receipt.response_salt !== "") errors.push("zero responseHash");
    }
    if (errors.length === 0) exchanges.push({ name, receipt });
    return errors.length === 0 || errors.join("; ");
  });

  // 1. served
  const served = sign(grant.fields);
  await r.checkAsync("QueryRequests.hashQuery and recoverQuerySigner agree with this client", async () => {
    const q = served.query;
    const tuple = [q.requester, q.requesterDept, q.datasetId, q.grantId, q.fields, q.paramsHash, q.nonce, q.deadline];
    return (await queries.hashQuery(tuple)) === P.queryDigest(q, chainId, queryRequests)
      && (await queries.recoverQuerySigner(tuple, served.body.signature)) === requester;
  });
  const mine = { requester, grantId, datasetId };
  verify("served query", served.body, await post(oracleUrl, served.body), { status: 200, outcome: 0, reason: "GRANTED", ...mine });
  // 2. the same body again: the nonce is spent
  verify("replayed query", served.body, await post(oracleUrl, served.body), { status: 409, outcome: 1, reason: "NONCE_REPLAYED", ...mine });
  // 3. a field outside the grant
  let extra = 0n;
  while ((grant.fields >> extra) & 1n) extra++;
  const tooMany = sign(grant.fields | (1n << extra));
  verify("field not granted", tooMany.body, await post(oracleUrl, tooMany.body), { status: 403, outcome: 1, reason: "FIELDS_NOT_GRANTED", ...mine });
  // 4. the malleable twin of a valid signature
  const twin = sign(grant.fields);
  twin.body.signature = P.hex(highS(twin.body.signature));
  verify("high-s signature", twin.body, await post(oracleUrl, twin.body),
    { status: 401, outcome: 1, reason: "BAD_SIGNATURE", requester: P.ZERO_ADDRESS, grantId: 0n, datasetId: 0n });

  r.check("receipts are consecutive records of the oracle's sequence", () => {
    const seqs = exchanges.map((x) => x.receipt.sequence);
    return (seqs.length === 4 && seqs[0] === before.lastSequence + 1n && seqs.every((s, k) => k === 0 || s === seqs[k - 1] + 1n))
      || `sequences ${seqs.join(",")} after ${before.lastSequence}`;
  });
  if (exchanges.length === 0) return;

  // §10: wait until the records are anchored
  const last = exchanges.reduce((m, x) => (x.receipt.sequence > m ? x.receipt.sequence : m), 0n);
  const until = Date.now() + 1000 * Number(opts["anchor-timeout"] ?? 45);
  let pinned;
  let state;
  for (;;) {
    pinned = await provider.getBlockNumber();
    state = await auditLog.oracleState(oracle, { blockTag: pinned });
    if (state.lastSequence >= last || Date.now() > until) break;
    await sleep(250);
  }
  r.check("the records are anchored (oracleState.lastSequence)", () => state.lastSequence >= last || `lastSequence ${state.lastSequence}`);

  const topic = P.keccak(ethers.toUtf8Bytes(P.AUDIT_RECORD_EVENT));
  const logs = await provider.getLogs({ address: auditLogAddress, topics: [topic], fromBlock, toBlock: pinned });
  const ours = new Map();
  for (const log of logs) {
    const { recordId, entry } = P.entryOfLog(log);
    if (ethers.getAddress(ethers.toBeHex(recordId >> 64n, 20)) === oracle) ours.set(recordId & ((1n << 64n) - 1n), { log, entry, recordId });
  }
  for (const { name, receipt } of exchanges) {
    await r.checkAsync(`${name}: the AuditRecordAppended event matches the receipt`, async () => {
      const found = ours.get(receipt.sequence);
      if (!found) return `no event for sequence ${receipt.sequence}`;
      const want = P.entryOfReceipt(receipt);
      const errors = Object.keys(want).filter((k) => String(want[k]).toLowerCase() !== String(found.entry[k]).toLowerCase());
      if (P.recordIdHex(found.recordId) !== receipt.record_id) errors.push("recordId");
      if (BigInt(receipt.checked_at_block) > BigInt(found.log.blockNumber)) errors.push("checked after anchoring");
      const tx = await provider.getTransactionReceipt(found.log.transactionHash);
      const batchTopic = P.keccak(ethers.toUtf8Bytes(P.AUDIT_BATCH_EVENT));
      const batch = tx.logs.find((l) => l.address === auditLogAddress && l.topics[0] === batchTopic);
      if (!batch || ethers.getAddress("0x" + batch.topics[1].slice(26)) !== oracle) errors.push("batch oracle");
      return errors.length === 0 || `differs: ${errors.join(", ")}`;
    });
  }

  // §10.5: the hash chain
  await r.checkAsync("hash chain: records 1..lastSequence recompute oracleState.head", async () => {
    let head = P.ZERO_HASH;
    let headBefore = null;
    for (let s = 1n; s <= state.lastSequence; s++) {
      const rec = ours.get(s);
      if (!rec) return `sequence ${s} missing`;
      head = P.chainStep(head, rec.recordId, rec.entry).head;
      if (s === before.lastSequence) headBefore = head;
    }
    if (before.lastSequence === 0n) headBefore = P.ZERO_HASH;
    return (head === state.head && headBefore === before.head) || `computed ${head}, contract ${state.head}`;
  });
  await r.checkAsync("hash chain: the head advanced from the earlier head through exactly the new records", async () => {
    let head = before.head;
    for (let s = before.lastSequence + 1n; s <= state.lastSequence; s++) head = P.chainStep(head, ours.get(s).recordId, ours.get(s).entry).head;
    return head === state.head && head !== before.head;
  });
  await r.checkAsync("hash chain: every AuditBatchAppended head of the oracle is the chain at its last record", async () => {
    const batchTopic = P.keccak(ethers.toUtf8Bytes(P.AUDIT_BATCH_EVENT));
    const batches = await provider.getLogs({ address: auditLogAddress, topics: [batchTopic, ethers.zeroPadValue(oracle, 32)], fromBlock, toBlock: pinned });
    const heads = new Map();
    let head = P.ZERO_HASH;
    for (let s = 1n; s <= state.lastSequence; s++) heads.set(s, (head = P.chainStep(head, ours.get(s).recordId, ours.get(s).entry).head));
    const coder = ethers.AbiCoder.defaultAbiCoder();
    for (const b of batches) {
      const [first, count, batchHead] = coder.decode(["uint64", "uint64", "bytes32"], b.data);
      if (heads.get(first + count - 1n) !== batchHead) return `batch at ${first}`;
    }
    return batches.length > 0;
  });
  await r.checkAsync("§9.4: every receipt's chain_head is the chain's head after its record", async () => {
    const heads = new Map();
    let head = P.ZERO_HASH;
    for (let s = 1n; s <= state.lastSequence; s++) heads.set(s, (head = P.chainStep(head, ours.get(s).recordId, ours.get(s).entry).head));
    const wrong = exchanges.filter(({ receipt }) => heads.get(BigInt(receipt.sequence)) !== receipt.chain_head);
    return wrong.length === 0 || `differs for ${wrong.map((x) => x.name).join(", ")}`;
  });
  await r.checkAsync("AuditLog.chainStep (on chain) equals this client's step for the served record", async () => {
    const { receipt } = exchanges[0];
    const e = P.entryOfReceipt(receipt);
    const rid = P.recordId(oracle, receipt.sequence);
    const tuple = [e.grantId, e.requester, e.datasetId, e.datasetVersion, e.outcome, e.reason, e.checkedAtBlock, e.requestHash, e.responseHash];
    return (await auditLog.chainStep(P.ZERO_HASH, rid, tuple)) === P.chainStep(P.ZERO_HASH, rid, e).head;
  });
  await r.checkAsync("AccessGrants counts the served record in the grant's quota", async () => {
    const after = await grants.grant(grantId, { blockTag: pinned });
    return after.used === usedBefore + 1n || `used ${usedBefore} -> ${after.used}`;
  });
}
