// The govshare protocol's computations, written from docs/PROTOCOL.md alone (ethers v6 for keccak,
// ABI encoding and secp256k1; node:crypto for ECIES). Section numbers refer to the spec.

import crypto from "node:crypto";
import { ethers } from "ethers";
import { canonicalBytes, canonicalJson, obj } from "./canonical.mjs";

export const ZERO_HASH = "0x" + "00".repeat(32);
export const ZERO_ADDRESS = "0x" + "00".repeat(20);
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n; // secp256k1 order (§6)
const HALF_N = N / 2n;
const U64 = (1n << 64n) - 1n;

export const hex = (bytes) => ethers.hexlify(bytes);
export const bytes = (h) => ethers.getBytes(h);
export const keccak = (data) => ethers.keccak256(data);
const word = (n) => ethers.zeroPadValue(ethers.toBeHex(BigInt(n)), 32);

// ------------------------------------------------------------------ §5 hashes

export function saltedHashPreimage(body, salt) {
  return canonicalBytes(obj({ salt: ethers.hexlify(bytes(salt)).toLowerCase(), body }));
}

/** keccak256(canonical_json({"salt": lowercase hex, "body": value})); salts of at least 16 bytes. */
export function saltedHash(body, salt) {
  if (bytes(salt).length < 16) throw new Error("salts are at least 16 bytes");
  return keccak(saltedHashPreimage(body, salt));
}

// ------------------------------------------------------------------ §6 signatures

/** r, s, v of a 65-byte signature in its canonical form, or throws (v 27/28, 0 < r < n, 0 < s <= n/2). */
export function canonicalSignature(signature) {
  if (typeof signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(signature)) throw new Error("not 0x + 65 bytes of hex");
  const b = bytes(signature);
  const r = BigInt(hex(b.slice(0, 32)));
  const s = BigInt(hex(b.slice(32, 64)));
  const v = b[64];
  if (v !== 27 && v !== 28) throw new Error(`v is ${v}, not 27 or 28`);
  if (!(r > 0n && r < N)) throw new Error("r out of range");
  if (!(s > 0n && s <= HALF_N)) throw new Error("s is zero or high (malleable)");
  return { r: hex(b.slice(0, 32)), s: hex(b.slice(32, 64)), v };
}

/** The checksummed address whose key signed `digest` (32 bytes), or throws. */
export function recoverSigner(digest, signature) {
  const sig = canonicalSignature(signature);
  const publicKey = ethers.SigningKey.recoverPublicKey(digest, ethers.Signature.from(sig));
  return ethers.computeAddress(publicKey);
}

/** A 65-byte canonical signature of `digest` (RFC 6979, low s, v 27/28). */
export function signDigest(privateKey, digest) {
  const sig = new ethers.SigningKey(privateKey).sign(digest);
  return ethers.concat([sig.r, sig.s, new Uint8Array([sig.v])]);
}

/** EIP-191 personal_sign hash of a message given as bytes or text. */
export function eip191Hash(message) {
  const m = typeof message === "string" ? ethers.toUtf8Bytes(message) : bytes(message);
  const h = keccak(ethers.concat([ethers.toUtf8Bytes(`\x19Ethereum Signed Message:\n${m.length}`), m]));
  if (h !== ethers.hashMessage(m)) throw new Error("EIP-191 hash disagrees with ethers.hashMessage");
  return h;
}

// ------------------------------------------------------------------ §7 EIP-712 queries

export const DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
export const QUERY_TYPE =
  "Query(address requester,uint32 requesterDept,uint64 datasetId,uint64 grantId,uint256 fields,bytes32 paramsHash,uint256 nonce,uint64 deadline)";
const QUERY_MEMBERS = [
  ["requester", "address"], ["requesterDept", "uint32"], ["datasetId", "uint64"], ["grantId", "uint64"],
  ["fields", "uint256"], ["paramsHash", "bytes32"], ["nonce", "uint256"], ["deadline", "uint64"],
];
const BITS = { requesterDept: 32n, datasetId: 64n, grantId: 64n, fields: 256n, nonce: 256n, deadline: 64n };
const coder = ethers.AbiCoder.defaultAbiCoder();

export function domainSeparator(chainId, verifyingContract) {
  const encoded = coder.encode(
    ["bytes32", "bytes32", "bytes32", "uint256", "address"],
    [keccak(ethers.toUtf8Bytes(DOMAIN_TYPE)), keccak(ethers.toUtf8Bytes("govshare")), keccak(ethers.toUtf8Bytes("1")),
      BigInt(chainId), verifyingContract],
  );
  const ours = keccak(encoded);
  const theirs = ethers.TypedDataEncoder.hashDomain({ name: "govshare", version: "1", chainId: BigInt(chainId), verifyingContract });
  if (ours !== theirs) throw new Error("domain separator disagrees with ethers' EIP-712 encoder");
  return { encoded, separator: ours };
}

/** A query (wire form or message: integers as BigInt, number or decimal string) with every member typed. */
export function parseQuery(q) {
  const keys = Object.keys(q).sort();
  const want = QUERY_MEMBERS.map(([k]) => k).sort();
  if (keys.join() !== want.join()) throw new Error(`query members: ${keys}`);
  if (typeof q.requester !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(q.requester)) throw new Error("requester is not an address");
  if (typeof q.paramsHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(q.paramsHash)) throw new Error("paramsHash is not 32 bytes");
  const out = { requester: ethers.getAddress(q.requester.toLowerCase()), paramsHash: q.paramsHash.toLowerCase() };
  for (const [name, bits] of Object.entries(BITS)) {
    const v = q[name];
    let n;
    if (typeof v === "bigint") n = v;
    else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
    else if (typeof v === "string" && v.length <= 78 && /^(0|[1-9][0-9]*)$/.test(v)) n = BigInt(v);
    else throw new Error(`${name} is not an unsigned integer or its decimal string`);
    if (n < 0n || n >= 1n << bits) throw new Error(`${name} does not fit uint${bits}`);
    out[name] = n;
  }
  return out;
}

/** The normalised wire form (§7.4): what requestHash commits to. */
export function normalisedQuery(q) {
  return obj({
    requester: q.requester, requesterDept: q.requesterDept, datasetId: String(q.datasetId), grantId: String(q.grantId),
    fields: String(q.fields), paramsHash: q.paramsHash, nonce: String(q.nonce), deadline: String(q.deadline),
  });
}

export function queryStruct(q) {
  const encoded = coder.encode(
    ["bytes32", ...QUERY_MEMBERS.map(([, t]) => t)],
    [keccak(ethers.toUtf8Bytes(QUERY_TYPE)), ...QUERY_MEMBERS.map(([k]) => q[k])],
  );
  return { encoded, structHash: keccak(encoded) };
}

/** The EIP-712 digest of a parsed query, cross-checked with ethers' TypedDataEncoder. */
export function queryDigest(q, chainId, verifyingContract) {
  const { separator } = domainSeparator(chainId, verifyingContract);
  const { structHash } = queryStruct(q);
  const digest = keccak(ethers.concat(["0x1901", separator, structHash]));
  const types = { Query: QUERY_MEMBERS.map(([name, type]) => ({ name, type })) };
  const theirs = ethers.TypedDataEncoder.hash({ name: "govshare", version: "1", chainId: BigInt(chainId), verifyingContract }, types, q);
  if (digest !== theirs) throw new Error("query digest disagrees with ethers' EIP-712 encoder");
  return digest;
}

/** A signed POST /v1/query body (§8.2) and what the client keeps to check the answer. */
export function signQuery(privateKey, { requesterDept, datasetId, grantId, fields, params, paramsSalt, nonce, deadline },
  chainId, verifyingContract) {
  const requester = new ethers.Wallet(privateKey).address;
  const q = parseQuery({ requester, requesterDept, datasetId, grantId, fields, paramsHash: saltedHash(params, paramsSalt), nonce, deadline });
  const signature = signDigest(privateKey, queryDigest(q, chainId, verifyingContract));
  const wire = normalisedQuery(q);
  wire.requesterDept = Number(q.requesterDept);
  const body = { query: wire, signature, params, paramsSalt: hex(bytes(paramsSalt)) };
  return { body, query: q };
}

/** The requestHash body of a signed query as the oracle normalises it (§5.2, §7.4). */
export function requestHashBody(body) {
  const q = parseQuery(body.query);
  const normal = normalisedQuery(q);
  normal.requesterDept = q.requesterDept; // a JSON integer
  return obj({ query: normal, signature: body.signature.toLowerCase(), params: body.params });
}

/** Check a POST /v1/query body's shape (§8.2, §7.4); throws naming the rule it breaks. */
export function validateBody(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("body is not an object");
  const keys = Object.keys(body).sort().join();
  if (keys !== "params,paramsSalt,query,signature") throw new Error(`body members: ${keys}`);
  if (typeof body.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(body.signature)) throw new Error("signature is not 0x + 65 bytes");
  if (typeof body.paramsSalt !== "string" || !/^0x[0-9a-fA-F]{32,128}$/.test(body.paramsSalt) || body.paramsSalt.length % 2)
    throw new Error("paramsSalt is not 16..64 bytes of 0x hex");
  const p = body.params;
  if (p === null || typeof p !== "object" || Array.isArray(p)) throw new Error("params is not an object");
  if (Object.keys(p).length > 32) throw new Error("more than 32 params");
  for (const v of Object.values(p)) if (typeof v !== "string") throw new Error("a param value is not a string");
  if (body.query === null || typeof body.query !== "object" || Array.isArray(body.query)) throw new Error("query is not an object");
  return parseQuery(body.query);
}

// ------------------------------------------------------------------ §9 receipts

export const RECEIPT_KEYS = [
  "record_id", "oracle", "sequence", "dataset_id", "dataset_version", "grant_id", "requester", "outcome", "reason",
  "checked_at_block", "request_hash", "response_hash", "request_salt", "response_salt", "record_hash", "previous_head",
  "chain_head", "signature",
];

/** The receipt's body (every member but the signature), as received. */
export function receiptBody(receipt) {
  const body = Object.create(null);
  for (const k of Object.keys(receipt)) if (k !== "signature") body[k] = receipt[k];
  return body;
}

export function receiptDigest(receipt) {
  return keccak(canonicalBytes(receiptBody(receipt)));
}

/** The address that signed a receipt (canonical signature, EIP-191 over the 32-byte digest), or throws. */
export function receiptSigner(receipt) {
  if (typeof receipt.signature !== "string") throw new Error("the receipt has no signature");
  return recoverSigner(eip191Hash(bytes(receiptDigest(receipt))), receipt.signature);
}

// ------------------------------------------------------------------ §10 audit records

export function recordId(oracle, sequence) {
  const s = BigInt(sequence);
  if (s < 1n || s > U64) throw new Error("sequences run from 1 to 2^64 - 1");
  return (BigInt(oracle) << 64n) | s;
}

export const recordIdHex = (rid) => "0x" + rid.toString(16);

export function packMeta(checkedAtBlock, datasetVersion, outcome, reason) {
  const parts = [[checkedAtBlock, 64n], [datasetVersion, 32n], [outcome, 8n], [reason, 8n]].map(([v, bits]) => {
    const n = BigInt(v);
    if (n < 0n || n >= 1n << bits) throw new Error(`a meta field does not fit ${bits} bits`);
    return n;
  });
  return parts[0] | (parts[1] << 64n) | (parts[2] << 96n) | (parts[3] << 104n);
}

export function unpackMeta(meta) {
  const m = BigInt(meta);
  return { checkedAtBlock: m & U64, datasetVersion: (m >> 64n) & 0xffffffffn, outcome: (m >> 96n) & 0xffn, reason: (m >> 104n) & 0xffn };
}

/** The four 32-byte words of a packed record (§10.2). */
export function packRecord(e) {
  const meta = packMeta(e.checkedAtBlock, e.datasetVersion, e.outcome, e.reason);
  return [word((BigInt(e.requester) << 96n) | (BigInt(e.grantId) << 32n)), word((BigInt(e.datasetId) << 192n) | meta),
    e.requestHash, e.responseHash];
}

/** One hash-chain step (§10.5). */
export function chainStep(head, rid, e) {
  const meta = packMeta(e.checkedAtBlock, e.datasetVersion, e.outcome, e.reason);
  const preimage = coder.encode(
    ["bytes32", "uint256", "uint64", "address", "uint64", "uint256", "bytes32", "bytes32"],
    [head, rid, BigInt(e.grantId), e.requester, BigInt(e.datasetId), meta, e.requestHash, e.responseHash],
  );
  return { preimage, head: keccak(preimage) };
}

/** The audit entry a receipt names (§10.4). */
export function entryOfReceipt(r) {
  return {
    grantId: BigInt(r.grant_id), requester: r.requester, datasetId: BigInt(r.dataset_id), datasetVersion: BigInt(r.dataset_version),
    outcome: BigInt(r.outcome), reason: BigInt(r.reason), checkedAtBlock: BigInt(r.checked_at_block),
    requestHash: r.request_hash, responseHash: r.response_hash,
  };
}

export const AUDIT_RECORD_EVENT = "AuditRecordAppended(uint64,address,uint64,uint256,uint256,bytes32,bytes32)";
export const AUDIT_BATCH_EVENT = "AuditBatchAppended(address,uint32,uint64,uint64,bytes32)";

/** What is wrong with a receipt's binding (§9.4): record id, record hash and chain head must follow
 * from its own fields. An empty list when it is consistent. */
export function receiptBindingErrors(r) {
  const errors = [];
  let e;
  let rid;
  try {
    e = entryOfReceipt(r);
    rid = recordId(r.oracle, r.sequence);
  } catch (err) {
    return [`not an audit record: ${err.message}`];
  }
  if (recordIdHex(rid) !== r.record_id) errors.push("record_id does not name oracle and sequence");
  const is32 = (v) => typeof v === "string" && /^0x[0-9a-fA-F]{64}$/.test(v);
  if (![r.record_hash, r.previous_head, r.chain_head].every(is32)) return [...errors, "a binding field is not 32 bytes of hex"];
  if (keccak(ethers.concat(packRecord(e))) !== r.record_hash) errors.push("record_hash is not of the packed record");
  if (chainStep(r.previous_head, rid, e).head !== r.chain_head) errors.push("chain_head does not follow from previous_head");
  return errors;
}

/** The event log (topics, data) a record becomes (§10.3). */
export function recordEvent(rid, e) {
  const meta = packMeta(e.checkedAtBlock, e.datasetVersion, e.outcome, e.reason);
  return {
    topics: [keccak(ethers.toUtf8Bytes(AUDIT_RECORD_EVENT)), word(e.datasetId), word(BigInt(e.requester)), word(e.grantId)],
    data: ethers.concat([word(rid), word(meta), e.requestHash, e.responseHash]),
  };
}

/** The entry an AuditRecordAppended log names (topics and data decoded by hand, §10.3). */
export function entryOfLog(log) {
  const d = bytes(log.data);
  const w = (k) => hex(d.slice(32 * k, 32 * k + 32));
  const meta = unpackMeta(BigInt(w(1)));
  return {
    recordId: BigInt(w(0)),
    entry: {
      grantId: BigInt(log.topics[3]), requester: ethers.getAddress("0x" + log.topics[2].slice(26)), datasetId: BigInt(log.topics[1]),
      datasetVersion: meta.datasetVersion, outcome: meta.outcome, reason: meta.reason, checkedAtBlock: meta.checkedAtBlock,
      requestHash: w(2), responseHash: w(3),
    },
  };
}

// ------------------------------------------------------------------ §11 reasons

export const ACCESS_REASONS = [
  "GRANTED", "UNKNOWN_GRANT", "UNKNOWN_DATASET", "DATASET_MISMATCH", "DATASET_RETIRED", "REQUESTER_NOT_MEMBER",
  "OWNER_NOT_MEMBER", "ACCOUNT_NOT_OPERATOR", "WRONG_DEPARTMENT", "NOT_APPROVED", "AWAITING_CO_APPROVAL", "REJECTED",
  "REVOKED", "EXPIRED", "QUOTA_EXHAUSTED", "FIELDS_NOT_GRANTED", "NO_FIELDS_REQUESTED", "VERSION_UNAVAILABLE",
];
export const ORACLE_REASONS = {
  BAD_SIGNATURE: [64, 401], DEADLINE_PASSED: [65, 401], NONCE_REPLAYED: [66, 409], MALFORMED_REQUEST: [67, 400],
  UNKNOWN_DATASET: [68, 404], CHAIN_UNAVAILABLE: [69, 503], SOURCE_UNAVAILABLE: [70, 502], SOURCE_TIMEOUT: [71, 504],
  SOURCE_BAD_RESPONSE: [72, 502], QUOTA_PENDING: [73, 403], WITHHELD: [74, 503], RATE_LIMITED: [75, 429],
};
export const OUTCOMES = { SERVED: 0, DENIED: 1, SOURCE_FAILURE: 2 };

export function reasonName(code) {
  const c = Number(code);
  if (c < 64) return ACCESS_REASONS[c] ?? `REASON_${c}`;
  for (const [name, [n]] of Object.entries(ORACLE_REASONS)) if (n === c) return name;
  return `REASON_${c}`;
}

/** The HTTP status of a recorded answer with this outcome and reason (§11.3). */
export function statusOf(outcome, reason) {
  const r = Number(reason);
  if (Number(outcome) === 0) return 200;
  if (r < 64) return 403;
  return ORACLE_REASONS[reasonName(r)]?.[1];
}

// ------------------------------------------------------------------ §13 Merkle

export function merkleLeaf(record) {
  return keccak(keccak(canonicalBytes(record)));
}

export function hashPair(a, b) {
  return BigInt(a) <= BigInt(b) ? keccak(ethers.concat([a, b])) : keccak(ethers.concat([b, a]));
}

export function merkleLevels(leaves) {
  const levels = [leaves];
  let level = leaves;
  while (level.length > 1) {
    const up = [];
    for (let k = 0; k + 1 < level.length; k += 2) up.push(hashPair(level[k], level[k + 1]));
    if (level.length % 2) up.push(level[level.length - 1]);
    levels.push(up);
    level = up;
  }
  return levels;
}

export const merkleRoot = (leaves) => (leaves.length ? merkleLevels(leaves).at(-1)[0] : ZERO_HASH);

export function merkleProof(leaves, index) {
  const proof = [];
  let k = index;
  for (const level of merkleLevels(leaves).slice(0, -1)) {
    if ((k ^ 1) < level.length) proof.push(level[k ^ 1]);
    k >>= 1;
  }
  return proof;
}

export const rootFromProof = (leaf, proof) => proof.reduce((node, sibling) => hashPair(node, sibling), leaf);

export function contentHash(records) {
  return keccak(ethers.toUtf8Bytes(records.map((r) => canonicalJson(r) + "\n").join("")));
}

// ------------------------------------------------------------------ §12 on-chain requests

function ecdhX(privateKey, publicKey65) {
  const ecdh = crypto.createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(bytes(privateKey)));
  return ecdh.computeSecret(Buffer.from(bytes(publicKey65)));
}

export function eciesKey(sharedX, ephemeralPublic) {
  const info = Buffer.concat([Buffer.from("govshare-ecies-v1", "ascii"), Buffer.from(bytes(ephemeralPublic))]);
  return Buffer.from(crypto.hkdfSync("sha256", Buffer.from(bytes(sharedX)), Buffer.alloc(32), info, 32));
}

/** ECIES v1 decryption (§12.3); throws on a malformed blob, another key, other associated data. */
export function eciesDecrypt(privateKey, blob, associatedData) {
  const b = Buffer.from(bytes(blob));
  if (b.length < 94 || b[0] !== 1) throw new Error("not a govshare ECIES v1 ciphertext");
  const ephemeral = b.subarray(1, 66);
  const nonce = b.subarray(66, 78);
  const body = b.subarray(78, b.length - 16);
  const tag = b.subarray(b.length - 16);
  const key = eciesKey(ecdhX(privateKey, ephemeral), ephemeral);
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(Buffer.from(bytes(associatedData)));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

/** ECIES v1 encryption with a given ephemeral key and nonce (random ones in real use). */
export function eciesEncrypt(recipientPublic64, plaintext, associatedData, ephemeralPrivate, nonce) {
  const recipient = Buffer.concat([Buffer.from([4]), Buffer.from(bytes(recipientPublic64))]);
  const ephemeralPublic = bytes(new ethers.SigningKey(ephemeralPrivate).publicKey);
  const key = eciesKey(ecdhX(ephemeralPrivate, recipient), ephemeralPublic);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, Buffer.from(bytes(nonce)));
  cipher.setAAD(Buffer.from(bytes(associatedData)));
  const body = Buffer.concat([cipher.update(Buffer.from(plaintext)), cipher.final()]);
  return hex(Buffer.concat([Buffer.from([1]), Buffer.from(ephemeralPublic), Buffer.from(bytes(nonce)), body, cipher.getAuthTag()]));
}

export const resultAuthMessage = (requestId, timestamp) => `govshare result ${requestId} at ${timestamp}`;
