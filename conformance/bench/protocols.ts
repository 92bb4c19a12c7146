// CPU cost of the threshold protocols with every party in this one process: key generation and
// signing for threshold ECDSA (DKLs23; also presigning, per presignature of a gateway-sized
// batch, and the one round that signs with a presignature), FROST, and threshold RSA. Measures process CPU time
// (user + system), not wall time, so other load on the machine distorts it less.
//
//   protocols.js           a table
//   protocols.js --json    one JSON object per line:
//                          {"protocol":"ecdsa-dkls23","curve":"secp256k1","t":2,"n":3,"op":"sign","ms_per_op":…}
//   protocols.js --quick   fewer iterations

import { createHash, randomBytes } from 'node:crypto';
import { inboxOf, runLocally, type Step } from '../../signers/protocols/common.js';
import { type PartyId, type Rng } from '../../contract/bytes.js';
import { dkgStart, dkgStep, publicPackage, type DkgKeyShare, type DkgState } from '../../signers/protocols/dkg.js';
import {
  ecdsaCombine,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaPresignStart,
  ecdsaPresignStep,
  ecdsaPresignedShare,
  ecdsaSignStart,
  ecdsaSignStep,
  type EcdsaCurveName,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaPresignature,
  type EcdsaSignState,
} from '../../signers/protocols/ecdsa/index.js';
import { PRESIGN_BATCH } from '../../gateway/ecdsa.js';
import { frostAggregate, frostCommit, frostSign, frostSigningPackage } from '../../signers/protocols/frost.js';
import { rsaCombine, rsaSignRequest } from '../../signers/protocols/rsa/combine.js';
import { dealRsa } from '../../signers/protocols/rsa/deal.js';
import { rsaPartial } from '../../signers/protocols/rsa/partial.js';
import type { GroupName, SuiteName } from '../../signers/protocols/suites.js';
import type { ProtocolRow } from './results.js';

const rng: Rng = (n) => new Uint8Array(randomBytes(n));
const ids = (n: number): PartyId[] => Array.from({ length: n }, (_, i) => i + 1);
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * CPU ms per call of `f`, after `warm` unmeasured calls: the median of the means of up to five
 * batches of `iters` calls in all, so a burst of other load on the machine moves it less.
 */
function measure(iters: number, warm: number, f: (i: number) => void): number {
  for (let i = 0; i < warm; i++) f(-1 - i);
  const batches = Math.min(5, iters);
  const means: number[] = [];
  for (let b = 0, done = 0; b < batches; b++) {
    const size = Math.floor((iters - done) / (batches - b));
    const t = cpuMs();
    for (let i = 0; i < size; i++) f(done + i);
    means.push((cpuMs() - t) / size);
    done += size;
  }
  return means.sort((a, b) => a - b)[Math.floor(means.length / 2)]!;
}

/** Runs every party's state machine to completion, delivering each round's messages. */
function ecdsaKeygen(curve: EcdsaCurveName, n: number, t: number, session: string): EcdsaKeyShare[] {
  const p = ids(n);
  const first: Step<EcdsaKeygenState, EcdsaKeyShare>[] = p.map((self) => ecdsaKeygenStart({ curve, session, self, participants: p, threshold: t }, rng));
  return runLocally(p, first, (_, s, inbox) => ecdsaKeygenStep(s, inbox, rng));
}

/**
 * One signature by the first t parties as the cluster makes it: the signers run rounds 1 and 2
 * and send their round-3 broadcasts to the coordinator, whose combine verifies the signature.
 */
function ecdsaSign(keys: readonly EcdsaKeyShare[], t: number, digest: Uint8Array, session: string): Uint8Array {
  const signers = ids(t);
  let steps: Step<EcdsaSignState, Uint8Array>[] = signers.map((id) => ecdsaSignStart(keys[id - 1]!, { session, signers, digest }, rng));
  let all = steps.flatMap((s) => s.outbound);
  while (!all.some((m) => m.round === 3)) {
    steps = signers.map((id, k) => ecdsaSignStep(steps[k]!.state, inboxOf(all, id), rng));
    all = steps.flatMap((s) => s.outbound);
  }
  const k = keys[0]!;
  return ecdsaCombine({ curve: k.curve, publicKey: Buffer.from(k.publicKey, 'hex'), session, signers, digest }, all);
}

/** A presigning session of the first t parties; per presignature, every signer's part. */
function ecdsaPresign(keys: readonly EcdsaKeyShare[], t: number, count: number, session: string): EcdsaPresignature[][] {
  const signers = ids(t);
  const out = runLocally(signers, signers.map((id) => ecdsaPresignStart(keys[id - 1]!, { session, signers, count }, rng)), (_, s, inbox) => ecdsaPresignStep(s, inbox, rng));
  return out[0]!.map((_, k) => out.map((parts) => parts[k]!));
}

/** One signature with a presignature: each signer's share, the coordinator's combine. */
function ecdsaSignPresigned(key: EcdsaKeyShare, parts: readonly EcdsaPresignature[], digest: Uint8Array, session: string): Uint8Array {
  const shares = parts.map((p) => ecdsaPresignedShare(p, { session, digest }));
  return ecdsaCombine({ curve: key.curve, publicKey: Buffer.from(key.publicKey, 'hex'), session, signers: parts.map((p) => p.self), digest }, shares);
}

function frostKeygen(group: GroupName, n: number, t: number, session: string): DkgKeyShare[] {
  const p = ids(n);
  const first: Step<DkgState, DkgKeyShare>[] = p.map((self) => dkgStart({ suite: group, session, self, participants: p, threshold: t }, rng));
  return runLocally(p, first, (_, s, inbox) => dkgStep(s, inbox));
}

function frostSignOnce(keys: readonly DkgKeyShare[], suite: SuiteName, t: number, message: Uint8Array, session: string): Uint8Array {
  const signers = ids(t);
  const commits = signers.map((id) => frostCommit(keys[id - 1]!, session, rng));
  const pub = publicPackage(keys[0]!);
  const pkg = frostSigningPackage(pub, { session, suite, message }, signers, commits.flatMap((c) => c.outbound));
  // Each signer gets the package as it travels (JSON), not the coordinator's parsed object.
  const shares = commits.flatMap((c) => frostSign(c.state, JSON.parse(JSON.stringify(pkg))).outbound);
  return frostAggregate(pub, pkg, shares);
}

function main(): void {
  const json = process.argv.includes('--json');
  const quick = process.argv.includes('--quick');
  const rows: ProtocolRow[] = [];
  const emit = (r: ProtocolRow) => {
    rows.push(r);
    if (json) process.stdout.write(JSON.stringify({ ...r, ms_per_op: Number(r.ms_per_op.toFixed(2)) }) + '\n');
  };
  const digest = new Uint8Array(createHash('sha256').update('mpchsm benchmark').digest());
  const signIters = quick ? 5 : 30;

  for (const [curve, t, n] of [['secp256k1', 2, 3], ['p256', 2, 3], ['p384', 2, 3], ['p521', 2, 3], ['secp256k1', 3, 5]] as [EcdsaCurveName, number, number][]) {
    let keys: EcdsaKeyShare[] = [];
    emit({ protocol: 'ecdsa-dkls23', curve, t, n, op: 'keygen', ms_per_op: measure(quick ? 1 : 3, 0, (i) => void (keys = ecdsaKeygen(curve, n, t, `kg-${i}`))) });
    emit({ protocol: 'ecdsa-dkls23', curve, t, n, op: 'sign', ms_per_op: measure(signIters, 3, (i) => void ecdsaSign(keys, t, digest, `sign-${i}`)) });
    const held: EcdsaPresignature[][] = [];
    emit({ protocol: 'ecdsa-dkls23', curve, t, n, op: 'presign', ms_per_op: measure(quick ? 1 : 2, 0, (i) => void held.push(...ecdsaPresign(keys, t, PRESIGN_BATCH, `presign-${i}`))) / PRESIGN_BATCH });
    emit({ protocol: 'ecdsa-dkls23', curve, t, n, op: 'sign-pre', ms_per_op: measure(Math.min(signIters, held.length - 3), 3, (i) => void ecdsaSignPresigned(keys[0]!, held.pop()!, digest, `pre-${i}`)) });
  }

  for (const [suite, group] of [['ed25519', 'ed25519'], ['secp256k1', 'secp256k1'], ['p256', 'p256']] as [SuiteName, GroupName][]) {
    let keys: DkgKeyShare[] = [];
    emit({ protocol: 'frost', curve: suite, t: 2, n: 3, op: 'keygen', ms_per_op: measure(quick ? 2 : 10, 1, (i) => void (keys = frostKeygen(group, 3, 2, `dkg-${i}`))) });
    emit({ protocol: 'frost', curve: suite, t: 2, n: 3, op: 'sign', ms_per_op: measure(signIters, 3, (i) => void frostSignOnce(keys, suite, 2, digest, `frost-${i}`)) });
  }

  // Threshold RSA keys are dealt (no distributed RSA generation yet): 'keygen' is the dealer.
  let deal: ReturnType<typeof dealRsa> | undefined;
  emit({ protocol: 'rsa-shoup', curve: 'rsa2048', t: 2, n: 3, op: 'keygen', ms_per_op: measure(1, 0, () => void (deal = dealRsa({ bits: 2048, participants: ids(3), threshold: 2 }, rng))) });
  const d = deal!;
  emit({
    protocol: 'rsa-shoup',
    curve: 'rsa2048',
    t: 2,
    n: 3,
    op: 'sign',
    ms_per_op: measure(quick ? 3 : 10, 1, (i) => {
      const req = rsaSignRequest(d.params, { session: `rsa-${i}`, scheme: 'pkcs1v15', hash: 'sha256', digest }, rng);
      const msgs = ids(2).map((id) => rsaPartial(d.params, d.shares.find((s) => s.id === id)!, req, rng, false));
      rsaCombine(d.params, req, msgs);
    }),
  });

  if (!json) {
    console.log('protocol       curve      t  n  op       CPU ms/op');
    for (const r of rows) console.log(`${r.protocol.padEnd(14)} ${r.curve.padEnd(10)} ${r.t}  ${r.n}  ${r.op.padEnd(8)} ${r.ms_per_op.toFixed(1).padStart(9)}`);
  }
}

main();
