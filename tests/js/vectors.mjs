// Check every file of tests/protocol/vectors/ against this client's own implementation of
// docs/PROTOCOL.md: compute each value and compare; every tampered vector must be refused.

import fs from "node:fs";
import path from "node:path";
import { ethers } from "ethers";
import { canonicalBytes, canonicalJson, parseJson } from "./canonical.mjs";
import * as P from "./protocol.mjs";

const read = (dir, name) => parseJson(fs.readFileSync(path.join(dir, name), "utf8"));
const lower = (h) => (typeof h === "string" ? h.toLowerCase() : h);
const refuses = (fn) => {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
};
const recoverOrNull = (fn) => {
  try {
    return fn();
  } catch {
    return null;
  }
};

export function checkVectors(dir, check) {
  canonical(read(dir, "canonical_json.json"), check);
  hashes(read(dir, "hashes.json"), check);
  const queries = read(dir, "queries.json");
  queryVectors(queries, check);
  receipts(read(dir, "receipts.json"), queries, check);
  auditRecords(read(dir, "audit_records.json"), check);
  merkle(read(dir, "merkle.json"), check);
  onchain(read(dir, "onchain.json"), check);
}

function canonical(v, check) {
  for (const c of v.cases) {
    check(`canonical_json: ${c.name}`, () => {
      const text = canonicalJson(parseJson(c.input));
      const utf8 = canonicalBytes(parseJson(c.input));
      return text === c.canonical && P.hex(utf8) === c.canonical_utf8_hex && P.keccak(utf8) === c.keccak256
        || `got ${JSON.stringify(text)}`;
    });
  }
  for (const c of v.refused) {
    check(`canonical_json refuses: ${c.name}`, () => refuses(() => canonicalJson(parseJson(c.input))) || "accepted");
  }
}

function hashes(v, check) {
  v.keccak256.forEach((c, k) => check(`keccak256 #${k}`, () => P.keccak(c.input_hex) === c.keccak256));
  for (const c of v.salted_hash) {
    check(`salted hash: ${c.name}`, () => {
      const body = parseJson(c.body);
      const pre = new TextDecoder().decode(P.saltedHashPreimage(body, c.salt));
      return (pre === c.preimage && P.saltedHash(body, c.salt) === c.hash) || `preimage ${pre}`;
    });
  }
  for (const c of v.salted_hash_refused) check(`salted hash refuses: ${c.name}`, () => refuses(() => P.saltedHash(parseJson(c.body), c.salt)));
  for (const c of v.params_hash) {
    check(`paramsHash: ${c.name}`, () =>
      new TextDecoder().decode(P.saltedHashPreimage(c.params, c.paramsSalt)) === c.preimage && P.saltedHash(c.params, c.paramsSalt) === c.paramsHash);
  }
  check("schemaHash", () => {
    const encoded = ethers.AbiCoder.defaultAbiCoder().encode(["string[]"], [v.schema_hash.fields]);
    return encoded === v.schema_hash.abi_encoded && P.keccak(encoded) === v.schema_hash.schemaHash;
  });
}

function queryVectors(v, check) {
  const d = v.domain;
  const chainId = d.chainId;
  check("EIP-712 type hashes", () =>
    P.keccak(ethers.toUtf8Bytes(P.DOMAIN_TYPE)) === v.types.domainTypeHash && P.keccak(ethers.toUtf8Bytes(P.QUERY_TYPE)) === v.types.queryTypeHash
    && v.types.EIP712Domain === P.DOMAIN_TYPE && v.types.Query === P.QUERY_TYPE);
  for (const dom of [d, ...v.other_domains]) {
    check(`domain separator chain ${dom.chainId} ${dom.verifyingContract}`, () => {
      const { encoded, separator } = P.domainSeparator(dom.chainId, dom.verifyingContract);
      return encoded === dom.encoded && separator === dom.domainSeparator;
    });
  }
  const keys = Object.values(v.test_keys.keys);
  const keyOf = (address) => keys.find((k) => k.address === address).private_key;
  for (const c of v.queries) {
    check(`query: ${c.name}`, () => {
      const errors = [];
      const q = P.validateBody(c.body);
      const m = P.parseQuery(c.message);
      for (const k of Object.keys(m)) if (m[k] !== q[k]) errors.push(`member ${k}`);
      if (P.saltedHash(c.body.params, c.body.paramsSalt) !== q.paramsHash || q.paramsHash !== c.paramsHash) errors.push("paramsHash");
      const { encoded, structHash } = P.queryStruct(q);
      if (encoded !== c.encodeData || structHash !== c.structHash) errors.push("structHash");
      const digest = P.queryDigest(q, chainId, d.verifyingContract);
      if (digest !== c.digest) errors.push("digest");
      if (P.recoverSigner(digest, c.signature) !== c.signer || q.requester !== c.signer) errors.push("signer");
      if (P.hex(P.signDigest(keyOf(c.signer), digest)) !== c.signature) errors.push("RFC 6979 signature");
      const committed = P.requestHashBody(c.body);
      if (canonicalJson(committed) !== canonicalJson(c.request_hash_body)) errors.push("normalised request body");
      if (new TextDecoder().decode(P.saltedHashPreimage(committed, c.request_salt)) !== c.request_hash_preimage) errors.push("request preimage");
      if (P.saltedHash(committed, c.request_salt) !== c.requestHash) errors.push("requestHash");
      return errors.length === 0 || errors.join(", ");
    });
  }
  const signer = v.queries[0].signer;
  for (const t of v.tampered) {
    check(`tampered query refused: ${t.name}`, () => {
      const q = P.parseQuery(t.message);
      const digest = P.queryDigest(q, t.domain.chainId, t.domain.verifyingContract);
      const recovered = recoverOrNull(() => P.recoverSigner(digest, t.signature));
      return (digest === t.digest && recovered === t.recovers && recovered !== signer) || `recovered ${recovered}`;
    });
  }
  check("parameters changed after signing", () => {
    const pm = v.params_mismatch;
    const q = P.validateBody(pm.body);
    const h = P.saltedHash(pm.body.params, pm.body.paramsSalt);
    return h === pm.paramsHash_of_params && q.paramsHash === pm.signed_paramsHash && h !== q.paramsHash;
  });
  for (const b of v.bodies_refused) {
    check(`body refused: ${b.name}`, () => refuses(() => P.validateBody(parseJson(b.body_text))) || "accepted");
  }
}

function receipts(v, queries, check) {
  const byName = Object.fromEntries(queries.queries.map((q) => [q.name, q]));
  for (const x of v.exchanges) {
    if (x.reply === null) continue; // withheld: its receipt is checked with the audit records
    check(`receipt: ${x.name}`, () => {
      const errors = [];
      const r = x.reply.receipt;
      if (Object.keys(r).sort().join() !== [...P.RECEIPT_KEYS].sort().join()) errors.push("keys");
      if (canonicalJson(P.receiptBody(r)) !== x.receipt_body_canonical) errors.push("canonical body");
      const digest = P.receiptDigest(r);
      if (digest !== x.receipt_digest || P.eip191Hash(P.bytes(digest)) !== x.eip191_hash) errors.push("digest");
      if (P.receiptSigner(r) !== v.oracle || r.oracle !== v.oracle) errors.push("signer");
      errors.push(...P.receiptBindingErrors(r));
      const key = Object.values(v.test_keys.keys)[0].private_key;
      if (P.hex(P.signDigest(key, P.eip191Hash(P.bytes(digest)))) !== r.signature) errors.push("RFC 6979 signature");
      const body = P.requestHashBody(byName[x.query].body);
      if (new TextDecoder().decode(P.saltedHashPreimage(body, r.request_salt)) !== x.request_hash_preimage
        || P.saltedHash(body, r.request_salt) !== r.request_hash) errors.push("requestHash");
      if (Number(x.status) === 200) {
        if (new TextDecoder().decode(P.saltedHashPreimage({ records: x.reply.records }, r.response_salt)) !== x.response_hash_preimage
          || P.saltedHash({ records: x.reply.records }, r.response_salt) !== r.response_hash) errors.push("responseHash");
      } else {
        if (r.response_hash !== P.ZERO_HASH || r.response_salt !== "") errors.push("zero responseHash");
        if (x.reply.reason !== P.reasonName(r.reason) || x.reply.title !== x.reply.reason || x.reply.status !== x.status) errors.push("problem");
      }
      if (P.statusOf(r.outcome, r.reason) !== Number(x.status)) errors.push("status");
      return errors.length === 0 || errors.join(", ");
    });
  }
  for (const t of v.tampered) {
    check(`tampered receipt refused: ${t.name}`, () => {
      const recovered = recoverOrNull(() => P.receiptSigner(t.receipt));
      return (recovered === t.recovers && recovered !== v.oracle) || `recovered ${recovered}`;
    });
  }
  for (const t of v.inconsistent) {
    check(`inconsistent receipt refused: ${t.name}`, () => {
      const signer = P.receiptSigner(t.receipt);
      return (signer === v.oracle && P.receiptBindingErrors(t.receipt).length > 0) || "its binding was accepted";
    });
  }
}

function auditRecords(v, check) {
  let head = P.ZERO_HASH;
  check("reason and outcome tables match the spec", () => {
    const access = Object.entries(v.reasons.access).every(([name, code]) => P.ACCESS_REASONS[Number(code)] === name)
      && Object.keys(v.reasons.access).length === P.ACCESS_REASONS.length;
    const oracle = Object.entries(v.reasons.oracle).every(([name, code]) => P.ORACLE_REASONS[name]?.[0] === Number(code))
      && Object.keys(v.reasons.oracle).length === Object.keys(P.ORACLE_REASONS).length;
    const outcomes = Object.entries(v.reasons.outcomes).every(([name, code]) => P.OUTCOMES[name] === Number(code));
    return access && oracle && outcomes;
  });
  for (const rec of v.records) {
    check(`audit record ${rec.sequence}`, () => {
      const errors = [];
      const r = rec.receipt;
      if (P.receiptSigner(r) !== v.oracle) errors.push("receipt signer");
      const rid = P.recordId(v.oracle, rec.sequence);
      if (P.recordIdHex(rid) !== rec.record_id || rid.toString() !== rec.record_id_decimal || r.record_id !== rec.record_id) errors.push("record id");
      const e = P.entryOfReceipt(r);
      const want = rec.entry;
      for (const k of Object.keys(want)) if (lower(String(e[k])) !== lower(String(want[k]))) errors.push(`entry ${k}`);
      const meta = P.packMeta(e.checkedAtBlock, e.datasetVersion, e.outcome, e.reason);
      if ("0x" + meta.toString(16) !== rec.meta || meta.toString() !== rec.meta_decimal) errors.push("meta");
      if (P.packRecord(e).join() !== rec.packed.join()) errors.push("packed");
      const ev = P.recordEvent(rid, e);
      if (ev.topics.join() !== rec.event.topics.join() || ev.data !== rec.event.data) errors.push("event");
      const back = P.entryOfLog(rec.event);
      if (back.recordId !== rid || Object.keys(e).some((k) => lower(String(back.entry[k])) !== lower(String(e[k])))) errors.push("event decoding");
      if (rec.head_before !== head || r.previous_head !== head) errors.push("head before");
      const step = P.chainStep(head, rid, e);
      if (step.preimage !== rec.chain_step_preimage || step.head !== rec.head_after || r.chain_head !== step.head) errors.push("chain step");
      const recordHash = P.keccak(ethers.concat(P.packRecord(e)));
      if (recordHash !== rec.record_hash || r.record_hash !== recordHash) errors.push("record hash");
      head = step.head;
      return errors.length === 0 || errors.join(", ");
    });
  }
  check("final head and batch event", () => {
    const b = v.batch_event;
    const data = P.bytes(b.data);
    return head === v.final_head && P.hex(data.slice(64, 96)) === head
      && b.topics[0] === P.keccak(ethers.toUtf8Bytes(P.AUDIT_BATCH_EVENT)) && BigInt(b.topics[1]) === BigInt(v.oracle)
      && v.event_signatures.AuditRecordAppended === P.AUDIT_RECORD_EVENT;
  });
  for (const c of v.record_ids) check(`record id ${c.oracle} ${c.sequence}`, () => P.recordIdHex(P.recordId(c.oracle, c.sequence)) === c.record_id);
  for (const c of v.record_ids_refused) check(`record id refused: ${c.why}`, () => refuses(() => P.recordId(v.oracle, c.sequence)));
  for (const c of v.meta) check(`meta ${c.meta}`, () => "0x" + P.packMeta(c.checkedAtBlock, c.datasetVersion, c.outcome, c.reason).toString(16) === c.meta);
  for (const c of v.meta_refused) check(`meta refused: ${c.why}`, () => refuses(() => P.packMeta(c.checkedAtBlock, c.datasetVersion, c.outcome, c.reason)));
  check("oracle export file", () => {
    const [header, ...lines] = v.oracle_export.lines.map(parseJson);
    const errors = [];
    if (header.type !== "govshare.oracle-export" || header.format !== 1n || header.records !== BigInt(lines.length) || header.oracle !== v.oracle) errors.push("header");
    lines.forEach((l, k) => {
      const r = v.records[k].receipt;
      const same = l.record_id === r.record_id && l.sequence === r.sequence && l.request_hash === r.request_hash
        && l.response_hash === r.response_hash && l.request_salt === r.request_salt && (l.response_salt ?? "") === r.response_salt
        && l.reason === r.reason && l.reason_name === P.reasonName(r.reason) && l.requester === r.requester
        && l.outcome === Object.keys(P.OUTCOMES)[Number(r.outcome)].toLowerCase();
      if (!same) errors.push(`line ${k + 2}`);
    });
    return errors.length === 0 || errors.join(", ");
  });
}

function merkle(v, check) {
  const leaves = v.records.map((r) => P.merkleLeaf(r.record));
  v.records.forEach((r, k) => {
    check(`merkle record ${k}`, () =>
      canonicalJson(r.record) === r.canonical && P.keccak(canonicalBytes(r.record)) === r.record_hash && leaves[k] === r.leaf
      && P.merkleProof(leaves, k).join() === r.proof.join() && P.rootFromProof(r.leaf, r.proof) === v.merkleRoot);
  });
  check("merkle levels and root", () =>
    JSON.stringify(P.merkleLevels(leaves)) === JSON.stringify(v.levels) && P.merkleRoot(leaves) === v.merkleRoot);
  check("content hash", () => P.contentHash(v.records.map((r) => r.record)) === v.contentHash
    && P.keccak(ethers.toUtf8Bytes(v.jsonl)) === v.contentHash);
  check("single-record and empty trees", () =>
    P.merkleRoot([P.merkleLeaf(v.single_record.record)]) === v.single_record.merkleRoot && P.merkleRoot([]) === v.empty.merkleRoot
    && P.contentHash([]) === v.empty.contentHash);
  for (const t of v.tampered) {
    check(`merkle proof refused: ${t.name}`, () => {
      const root = P.rootFromProof(P.merkleLeaf(t.record), t.proof);
      return root === t.computed_root && root !== v.merkleRoot;
    });
  }
}

function onchain(v, check) {
  const keys = v.test_keys.keys;
  const requester = keys["requester (account 5)"];
  const oracle = keys["oracle (account 4)"];
  check("identity: public key and address", () =>
    new ethers.SigningKey(oracle.private_key).publicKey === "0x04" + v.identity.public_key.slice(2)
    && ethers.computeAddress("0x04" + v.identity.public_key.slice(2)) === v.identity.oracle
    && ethers.getAddress(ethers.dataSlice(P.keccak(v.requester_public_key), 12)) === v.requester_public_key_address
    && v.requester_public_key_address === requester.address);
  const enc = v.params_encryption;
  check("ECIES: parameters decrypt", () =>
    P.eciesDecrypt(oracle.private_key, enc.ciphertext, enc.associated_data).toString("utf8") === enc.plaintext
    && canonicalJson(enc.params) === enc.plaintext && enc.associated_data === requester.address.toLowerCase()
    && P.keccak(enc.ciphertext) === enc.commitment);
  check("ECIES: encryption reproduced from the ephemeral key and nonce", () =>
    P.eciesEncrypt(v.identity.public_key, Buffer.from(enc.plaintext, "utf8"), enc.associated_data, enc.ephemeral_private_key, enc.nonce) === enc.ciphertext
    && P.hex(P.eciesKey(enc.shared_x, enc.ephemeral_public_key)) === enc.aes_key);
  const res = v.result_encryption;
  const rh = v.request_hash;
  check("ECIES: result decrypts and its receipt is the oracle's", () => {
    const plain = P.eciesDecrypt(requester.private_key, res.ciphertext, res.associated_data).toString("utf8");
    const result = parseJson(plain);
    return plain === res.plaintext && canonicalJson(result) === plain && P.receiptSigner(result.receipt) === v.identity.oracle
      && res.associated_data === ethers.zeroPadValue(ethers.toBeHex(rh.requestId), 32);
  });
  for (const t of v.tampered) check(`ECIES refused: ${t.name}`, () => refuses(() => P.eciesDecrypt(oracle.private_key, t.ciphertext, t.associated_data)));
  check("on-chain requestHash", () => {
    const body = { requestId: rh.requestId, transaction: rh.transaction, params: enc.params };
    return canonicalJson(body) === canonicalJson(rh.body) && P.saltedHash(body, rh.request_salt) === rh.requestHash
      && new TextDecoder().decode(P.saltedHashPreimage(body, rh.request_salt)) === rh.preimage
      && P.saltedHash({ requestId: rh.requestId, transaction: rh.transaction, params: null }, rh.request_salt) === rh.undecryptable_requestHash;
  });
  const a = v.result_auth;
  check("result-fetching Authorization", () => {
    const message = P.resultAuthMessage(a.requestId, a.timestamp);
    const h = P.eip191Hash(message);
    const sig = P.hex(P.signDigest(requester.private_key, h));
    return message === a.message && h === a.eip191_hash && sig === a.signature && `Govshare ${a.timestamp}:${sig}` === a.authorization
      && P.recoverSigner(h, a.signature) === a.signer
      && P.recoverSigner(P.eip191Hash(P.resultAuthMessage(a.requestId + 1n, a.timestamp)), a.signature) === a.for_another_request.recovers;
  });
}
