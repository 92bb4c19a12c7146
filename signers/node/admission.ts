// Admitting a new signer after an approved AddSigner (issue #7). The newcomer starts with a
// sealed store, its identity and the identities of the active signers (its operator's
// configuration) — no policy state. Each active signer that applied the AddSigner seals its
// whole policy state (guard.ts: registry with the applications' secrets, governance chain, key
// policies, aliases, signers admitted and retired, ledger) to the identity it pinned from the
// approved proposal; the gateway only relays. The newcomer enrols only when every active
// signer sent the same state, for its own fresh challenge: one lying or stale party, or a
// gateway replaying an older admission, is refused, and nothing is written.
import { randomBytes } from 'node:crypto';
import { canonicalJson } from '../../contract/canonical.js';
import { toHex } from '../../contract/bytes.js';
import type { SignerConfig } from './config.js';
import { openEnvelope, sealEnvelope } from '../../contract/identity/envelope.js';
import type { SealedState } from '../../contract/signer-rpc/admission.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { admissionStateSchema, PolicyGuard, type AdmissionState } from './guard/index.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import { RpcError, type Answer } from './rpc.js';
import { activateCredentials, activationProof } from './tpm/activation.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const PURPOSE = 'signer-admission';
const { admission } = signerRoutes;

const session = (challenge: string) => `admission-${challenge}`;

/** An active signer's side: its policy state, sealed to the admitted newcomer for its challenge. */
export function sealAdmissionState(guard: PolicyGuard, config: SignerConfig, identity: IdentitySecrets, body: unknown): SealedState {
  const req = admission.package.request.parse(body);
  const state = guard.admissionState(req.name);
  const newcomer = state.admitted.find((p) => p.name === req.name)!;
  const payload = Buffer.from(JSON.stringify(state));
  const envelope = sealEnvelope({ purpose: PURPOSE, session: session(req.challenge), round: 0, from: config.id, to: newcomer.id, payload }, identity, newcomer.identity);
  payload.fill(0);
  return { from: config.id, envelope };
}

/** Where this signer's TPM and attestation key are (a TPM-sealed signer's): what answers the other signers' credentials. */
export interface OwnTpm {
  tcti: string;
  keyFile: string;
}

/**
 * Its TPM's answer to each other signer's credential (tpm/activation.ts): an HMAC under the
 * secret, bound to that signer and this identity. A newcomer answers before it is enrolled, a
 * founding signer once it is (signers/node/genesis.ts).
 */
export async function answerCredentials(tpm: OwnTpm | undefined, identity: IdentitySecrets, body: unknown): Promise<Answer<typeof admission.activate>> {
  const req = admission.activate.request.parse(body);
  if (!tpm) throw new RpcError(409, 'invalid-state', 'this signer is not sealed to a TPM: it holds no attestation key to activate a credential with');
  const secrets = await activateCredentials(tpm.tcti, tpm.keyFile, req.credentials.map((c) => c.credential)).catch((e: Error) => {
    throw new RpcError(403, 'access-denied', `a credential relayed is not for this TPM: ${e.message}`);
  });
  const proofs = req.credentials.map((c, i) => ({ from: c.from, proof: activationProof(secrets[i]!, c.from, identity.fingerprint) }));
  for (const s of secrets) s.fill(0);
  return { proofs };
}

/** The newcomer's side, before it is enrolled: a challenge, then the sealed states. */
export class Admission {
  private challenge: string | undefined;

  constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly identity: IdentitySecrets,
    /** A TPM-sealed signer's TPM and attestation key, for the active signers' credentials (tpm/activation.ts). */
    private readonly tpm?: OwnTpm,
  ) {}

  routes() {
    return {
      [admission.challenge.path]: async (b: unknown): Promise<Answer<typeof admission.challenge>> => {
        admission.challenge.request.parse(b);
        this.challenge = toHex(randomBytes(32));
        return { challenge: this.challenge };
      },
      [admission.activate.path]: (b: unknown) => answerCredentials(this.tpm, this.identity, b),
      [admission.enrol.path]: (b: unknown) => this.enrol(b),
    };
  }

  private async enrol(body: unknown): Promise<Answer<typeof admission.enrol>> {
    const req = admission.enrol.request.parse(body);
    const challenge = this.challenge;
    if (!challenge || req.challenge !== challenge) throw new RpcError(409, 'stale-challenge', 'these states answer another challenge than this signer’s current one');
    this.challenge = undefined; // one attempt per challenge
    // States from signers admitted after this one was configured, or restored since with a new
    // identity (guard/restore.ts), cannot be opened here, and need not be: those this one pins
    // vouch for them (their identities are in the state).
    const pinned = req.packages.filter((p) => this.config.peers.some((x) => x.id === p.from && x.id !== this.config.id));
    const opened = pinned.map((p) => ({ from: p.from, state: this.tryOpen(p, challenge) }));
    const states = opened.flatMap((o) => (o.state instanceof Error ? [] : [{ from: o.from, state: o.state }]));
    if (states.length === 0) throw new RpcError(403, 'not-unanimous', 'no state from a signer this one pins');
    const first = states[0]!.state;
    const replaced = (id: number) => {
      const now = first.admitted.find((a) => a.id === id);
      return now !== undefined && now.identity.signPublicKey !== this.config.peers.find((p) => p.id === id)!.identity.signPublicKey;
    };
    const unopened = opened.find((o) => o.state instanceof Error && !replaced(o.from));
    if (unopened) throw unopened.state as Error;
    // Every pinned peer that is not retired nor restored since must have answered, with the same state.
    const expected = this.config.peers.map((p) => p.id).filter((id) => id !== this.config.id && !first.retired.includes(id) && !replaced(id));
    const from = states.map((s) => s.from).sort((a, b) => a - b);
    if (from.join() !== expected.sort((a, b) => a - b).join()) throw new RpcError(403, 'not-unanimous', `admission needs the state of every active signer (${expected.join(', ')}), got ${from.join(', ')}`);
    const agreed = canonicalJson(comparable(first));
    const odd = states.find((s) => canonicalJson(comparable(s.state)) !== agreed);
    if (odd) throw new RpcError(403, 'not-unanimous', `signer ${odd.from} handed over another policy state than signer ${states[0]!.from}: nothing was enrolled`);
    const merged: AdmissionState = {
      ...first,
      keys: first.keys.map((k, i) => {
        const all = states.map((s) => s.state.keys[i]!);
        const deletion = all.map((x) => x.deletionDate).filter((d) => d !== undefined);
        return { ...k, createdAt: Math.min(...all.map((x) => x.createdAt)), ...(deletion.length ? { deletionDate: Math.max(...deletion) } : {}) };
      }),
      ledger: mergedLedger(states.map((s) => s.state.ledger)),
      awaiting: mergedAwaiting(states.map((s) => ({ from: s.from, awaiting: s.state.awaiting }))),
    };
    return PolicyGuard.enrolAdmitted(this.store, { identity: this.identity, party: this.config.id, name: this.config.name, peers: this.config.peers, threshold: this.config.threshold }, merged);
  }

  private tryOpen(p: SealedState, challenge: string): AdmissionState | Error {
    try {
      return this.open(p, challenge);
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  private open(p: SealedState, challenge: string): AdmissionState {
    const peer = this.config.peers.find((x) => x.id === p.from)!;
    const bytes = openEnvelope(p.envelope, this.identity, peer.identity, { purpose: PURPOSE, session: session(challenge), round: 0, from: p.from, to: this.config.id });
    try {
      return admissionStateSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8')));
    } finally {
      bytes.fill(0);
    }
  }
}

/**
 * The ledgers the active signers handed over, as one: what each spent (proposals, nonces,
 * requests: the union), and for each WebAuthn credential the highest signature counter any of
 * them recorded — so a security-key approval already spent at one of them is refused at the
 * newcomer too. A lying signer can only raise a counter, refusing that key's approvals here until
 * it passes it: a denial it could cause anyway; it cannot lower one an honest signer reports.
 */
export function mergedLedger(ledgers: readonly AdmissionState['ledger'][]): AdmissionState['ledger'] {
  const webauthn = union(ledgers.map((l) => l.webauthn ?? {}));
  return {
    seq: ledgers[0]!.seq,
    proposals: union(ledgers.map((l) => l.proposals)),
    nonces: union(ledgers.map((l) => l.nonces)),
    requests: union(ledgers.map((l) => l.requests)),
    ...(Object.keys(webauthn).length ? { webauthn } : {}),
  };
}

/**
 * The signers any active signer still awaits the TPM of (a newcomer admitted meanwhile, under
 * require_attestation): the newcomer awaits each of them too, until it checked that TPM's answer
 * itself. Signers awaiting the same one name the same EK and AK (its approved quote's): two that
 * differ mean one lies, perhaps putting a TPM it controls in the genuine one's place, and nothing
 * is enrolled. A lying signer can still add one it pins, refusing sessions with it here until it answers.
 */
export function mergedAwaiting(states: readonly { from: number; awaiting: AdmissionState['awaiting'] }[]): AdmissionState['awaiting'] {
  const byId = new Map<number, { from: number; target: AdmissionState['awaiting'][number] }>();
  for (const { from, awaiting } of states)
    for (const a of awaiting) {
      const seen = byId.get(a.id);
      if (!seen) byId.set(a.id, { from, target: a });
      else if (seen.target.ekPublic !== a.ekPublic || seen.target.akPublic !== a.akPublic)
        throw new RpcError(403, 'not-unanimous', `signers ${seen.from} and ${from} await another TPM of party ${a.id}: nothing was enrolled`);
    }
  return [...byId.values()].map((v) => v.target).sort((a, b) => a.id - b.id);
}

/**
 * What must agree across signers: everything but what each records by its own clock — when it
 * stored a key (the earliest is kept), when a deletion falls due (the latest is kept) — the
 * expiring replay records (merged) and the signers each still awaits (merged).
 */
const comparable = ({ awaiting: _a, ...s }: AdmissionState) => ({ ...s, keys: s.keys.map(({ createdAt: _c, deletionDate: _d, ...k }) => k), ledger: { seq: s.ledger.seq } });

/** Consumed proposals, nonces and requests: every signer's, each until its latest expiry. */
function union(records: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, until] of Object.entries(r)) out[k] = Math.max(out[k] ?? 0, until);
  return out;
}
