// The kill -9 fault harness (issue #18): a 2-of-3 cluster started through `mpchsm`, a workload
// of Sign, CreateKey, RefreshKeyShares and ScheduleKeyDeletion, SIGKILL of a signer, the gateway
// or both at a random point inside one operation, a restart of the same cluster directory, and
// the ledger of everything the cluster acknowledged, to check after each restart. Random choices
// come from a printed seed (MPCHSM_FAULT_SEED replays a run, MPCHSM_FAULT_TRIALS picks trials).
import { execFile } from 'node:child_process';
import { randomBytes, createPublicKey, verify } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateKeyCommand, DescribeKeyCommand, GetPublicKeyCommand, ScheduleKeyDeletionCommand, SignCommand } from '@aws-sdk/client-kms';
import { mpchsmBin, repoRoot, type TestCluster } from '../helpers/cluster.js';
import { seededRng } from '../helpers/rng.js';
import { failure, gatewayCall, kms, proposalIn } from '../policy-cluster/helpers.js';

const run = promisify(execFile);

export type Operation = 'sign' | 'create' | 'refresh' | 'delete';
export const OPERATIONS: readonly Operation[] = ['sign', 'create', 'refresh', 'delete'];
const VICTIMS = [['signer1'], ['signer2'], ['signer3'], ['gateway'], ['gateway', 'signer1'], ['gateway', 'signer2'], ['gateway', 'signer3']] as const;
export type Victim = (typeof VICTIMS)[number][number];

/** What one trial does: the operation, whom it kills, and when (ms after the operation starts). */
export interface TrialPlan {
  index: number;
  op: Operation;
  victims: readonly Victim[];
  delayMs: number;
}

/** The run's seed: MPCHSM_FAULT_SEED, or a fresh one (printed, so a failing run can be replayed). */
export const runSeed = (): string => process.env.MPCHSM_FAULT_SEED ?? randomBytes(6).toString('hex');

/** Trial `index`'s plan, a function of the seed and the index alone; `spanMs[op]` is how long the operation takes unharmed. */
export function planTrial(seed: string, index: number, spanMs: Record<Operation, number>): TrialPlan {
  const rng = seededRng(`${seed}/${index}`);
  const uniform = () => new DataView(rng(4).buffer).getUint32(0) / 2 ** 32;
  const op = OPERATIONS[index % OPERATIONS.length]!;
  const victims = VICTIMS[Math.floor(uniform() * VICTIMS.length)]!;
  return { index, op, victims, delayMs: Math.round(uniform() * 1.2 * spanMs[op]) };
}

export const describePlan = (seed: string, p: TrialPlan): string =>
  `trial ${p.index} (replay: MPCHSM_FAULT_SEED=${seed} MPCHSM_FAULT_TRIALS=${p.index}): ${p.op}, SIGKILL ${p.victims.join('+')} ${p.delayMs} ms in`;

/** The trials to run: MPCHSM_FAULT_TRIALS (comma-separated indices), or 0..count-1. */
export function trialIndices(count: number): number[] {
  const only = process.env.MPCHSM_FAULT_TRIALS;
  return only ? only.split(',').map(Number) : Array.from({ length: count }, (_, i) => i);
}

export type Spec = 'ECC_NIST_EDWARDS25519' | 'ECC_NIST_P256';
const ALGORITHM: Record<Spec, 'ED25519_SHA_512' | 'ECDSA_SHA_256'> = { ECC_NIST_EDWARDS25519: 'ED25519_SHA_512', ECC_NIST_P256: 'ECDSA_SHA_256' };

export interface KnownKey {
  spec: Spec;
  publicKey?: Uint8Array;
  /** ScheduleKeyDeletion was acknowledged (its proposal executed). */
  deletionAcknowledged: boolean;
  /** A deletion was asked; until acknowledged, its proposal is here. */
  deletionProposal?: string;
}

export interface Released {
  keyId: string;
  message: Uint8Array;
  signature: Uint8Array;
}

/** Everything the cluster acknowledged, and every signature it released. */
export class Ledger {
  readonly keys = new Map<string, KnownKey>();
  readonly released: Released[] = [];

  live(): string[] {
    return [...this.keys].filter(([, k]) => !k.deletionAcknowledged && !k.deletionProposal).map(([id]) => id);
  }
}

/** Whether `signature` over `message` verifies against the key's public key. */
export function verifies(key: KnownKey, message: Uint8Array, signature: Uint8Array): boolean {
  const pub = createPublicKey({ key: Buffer.from(key.publicKey!), format: 'der', type: 'spki' });
  return verify(key.spec === 'ECC_NIST_P256' ? 'sha256' : null, message, pub, signature);
}

/** The cluster the trials share, restarted in place after each kill. */
export class FaultCluster {
  readonly ledger = new Ledger();

  constructor(readonly tc: TestCluster) {}

  /** `mpchsm ARGS --dir DIR`: exit status and output (stdout and stderr). */
  async mpchsm(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [mpchsmBin, ...args, '--dir', this.tc.dir], { cwd: repoRoot, timeout: 120_000, env: env ?? process.env });
      return { code: 0, out: stdout + stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
      return { code: typeof err.code === 'number' ? err.code : -1, out: `${err.stdout ?? ''}${err.stderr ?? err.message}` };
    }
  }

  /** SIGKILL to each victim, by the pid `up` recorded. */
  kill(victims: readonly Victim[]): void {
    const c = this.tc.cluster();
    for (const v of victims) {
      const pid = v === 'gateway' ? c.gateway.pid : c.signers.find((s) => s.name === v)!.pid;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone: the operation may have ended it
      }
    }
  }

  /** Stops whatever still runs and starts the same cluster again; throws with `up`'s output if it cannot. */
  async restart(env?: NodeJS.ProcessEnv): Promise<void> {
    await this.mpchsm(['down']);
    const up = await this.mpchsm(['up', '--detach'], env);
    if (up.code !== 0) throw new Error(`the cluster did not start again after the kill: ${up.out}`);
  }

  async createKey(spec: Spec): Promise<string> {
    const id = (await kms(this.tc, 'admin1').send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    this.ledger.keys.set(id, { spec, deletionAcknowledged: false });
    return id;
  }

  async publicKey(keyId: string): Promise<Uint8Array> {
    const k = this.ledger.keys.get(keyId)!;
    k.publicKey ??= (await kms(this.tc, 'app').send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;
    return k.publicKey;
  }

  /** Signs a fresh message; a signature released is recorded whatever happens next. */
  async sign(keyId: string): Promise<Released> {
    const k = this.ledger.keys.get(keyId)!;
    const message = randomBytes(32);
    const r = await kms(this.tc, 'app').send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: ALGORITHM[k.spec] }));
    const released = { keyId, message, signature: r.Signature! };
    this.ledger.released.push(released);
    return released;
  }

  /** MpcHsm.RefreshKeyShares as admin1: whether it was acknowledged, and the answer. */
  async refresh(keyId: string): Promise<{ ok: boolean; answer: string }> {
    const r = await gatewayCall(this.tc, 'admin1', 'MpcHsm.RefreshKeyShares', { KeyId: keyId });
    return { ok: r.status === 200, answer: `${r.status} ${JSON.stringify(r.body)}` };
  }

  /** ScheduleKeyDeletion as admin1, which becomes a proposal (not yet executed). */
  async proposeDeletion(keyId: string): Promise<string> {
    const id = proposalIn(await failure(kms(this.tc, 'admin1').send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))));
    this.ledger.keys.get(keyId)!.deletionProposal = id;
    return id;
  }

  /** Approves a deletion proposal as admin2, then admin3 while pending; acknowledged once executed. */
  async approveDeletion(keyId: string): Promise<{ ok: boolean; answer: string }> {
    const k = this.ledger.keys.get(keyId)!;
    let answer = '';
    for (const as of ['admin2', 'admin3']) {
      const r = await this.mpchsm(['approve', k.deletionProposal!, '--as', as, '--json']);
      answer = r.out.trim();
      if (r.code !== 0) return { ok: false, answer };
      const status = (JSON.parse(r.out) as { Status: string }).Status;
      if (status === 'Executed') {
        k.deletionAcknowledged = true;
        return { ok: true, answer };
      }
      if (status !== 'Pending') return { ok: false, answer };
    }
    return { ok: false, answer };
  }

  async keyState(keyId: string): Promise<string> {
    return (await kms(this.tc, 'app').send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState!;
  }

  /** `mpchsm audit verify`: exit status and output. */
  auditVerify(): Promise<{ code: number; out: string }> {
    return this.mpchsm(['audit', 'verify']);
  }

  /**
   * Key shares held where the gateway has no key (orphans), and keys the gateway has that a
   * signer holds no share of, read from the files' names (the records stay sealed).
   */
  shareInventory(): { orphans: string[]; missing: string[] } {
    const gatewayKeys = new Set(readdirSync(path.join(this.tc.dir, 'gateway', 'keys')).flatMap((f) => /^([0-9a-f-]{36})\.json$/.exec(f)?.[1] ?? []));
    const orphans: string[] = [];
    const missing: string[] = [];
    for (const signer of ['signer1', 'signer2', 'signer3']) {
      const store = path.join(this.tc.dir, 'signers', signer, 'store');
      const held = new Set(existsSync(store) ? readdirSync(store).flatMap((f) => /^key\.([0-9a-f-]{36})\.rec$/.exec(f)?.[1] ?? []) : []);
      for (const k of held) if (!gatewayKeys.has(k)) orphans.push(`${signer}: ${k}`);
      for (const k of gatewayKeys) if (!held.has(k)) missing.push(`${signer}: ${k}`);
    }
    return { orphans, missing };
  }
}

/** `p`'s outcome within `ms`, never its rejection: a killed process ends a request either way. */
export async function settle<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false; error: string }>((resolve) => (timer = setTimeout(() => resolve({ ok: false, error: `no answer within ${ms} ms` }), ms)));
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value }), (e: unknown) => ({ ok: false as const, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
