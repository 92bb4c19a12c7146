// Threshold RSA at the gateway: the key ceremony (a one-shot dealer process whose output is
// encrypted to each signer) and signing/decryption sessions (verify each partial, combine,
// check y^e ≡ x, then release).
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { z } from 'zod';
import { useOf, type Creation, type RequestEvidence, type Use } from '../contract/signer-rpc/authority.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { fingerprint } from '../contract/identity/identity.js';
import { ProtocolError } from '../signers/protocols/common.js';
import { rsaCombine, rsaDecryptRequest, rsaSignRequest, type RsaCombineResult } from '../signers/protocols/rsa/combine.js';
import { parsePublicParams, rsaPublicParamsSchema, type RsaPublicParams } from '../signers/protocols/rsa/key.js';
import type { SignHash } from '../signers/protocols/rsa/padding.js';
import type { DecryptPadding, RsaRequest } from '../signers/protocols/rsa/request.js';
import type { ClusterSessions, SignRequest } from './coordinator.js';
import { ClusterError, askAll, gatherTraced, traceOf, traceSession, type Trace } from './cluster-outcome.js';
import type { KeyRecord } from './keys.js';
import { ALGORITHM_INFO, HASHES, RSA_PKCS1_RAW, type EncryptionAlgorithm } from '../contract/keys/specs.js';
import { BadPartialError } from './planner.js';
import type { CallOptions, SignerClient } from './signer-client.js';

const DEALER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'signers', 'ceremony', 'rsa-dealer.js');
const CEREMONY_TIMEOUT_MS = 15 * 60_000; // safe primes for RSA-4096 take minutes

export const ENCRYPTION_PADDING = { RSAES_OAEP_SHA_1: 'oaep-sha1', RSAES_OAEP_SHA_256: 'oaep-sha256', RSAES_PKCS1_V1_5: 'pkcs1v15' } as const satisfies Record<EncryptionAlgorithm, DecryptPadding>;

const dealtSchema = z.object({
  params: rsaPublicParamsSchema,
  dealer: z.unknown(),
  shares: z.array(z.object({ id: z.number().int(), envelope: z.unknown() })),
});

export class RsaCoordinator {
  private readonly params = new Map<string, { source: string; params: RsaPublicParams }>();

  constructor(
    private readonly cluster: ClusterSessions,
    private readonly clients: ReadonlyMap<number, SignerClient>,
    private readonly log: Logger,
  ) {}

  /**
   * Deals a new (or imported) key in a short-lived dealer process and installs each signer's
   * encrypted share, pending until the gateway commits it (cluster.ts createKey, which rolls
   * the installation back if one fails); answers the key's public parameters.
   */
  async ceremony(keyId: string, keySpec: string, trace: Trace, pkcs8Pem?: string, creation?: Creation): Promise<z.infer<typeof rsaPublicParamsSchema>> {
    const signers = [...this.clients.values()];
    const participants = signers.map((c) => c.id);
    const recipients = signers.map((c) => ({ id: c.id, identity: c.entry.identity }));
    const request = pkcs8Pem
      ? { mode: 'import', pkcs8Pem, participants, threshold: this.cluster.config.threshold, keyId, recipients }
      : { mode: 'generate', bits: Number(keySpec.slice(4)), participants, threshold: this.cluster.config.threshold, keyId, recipients };
    const started = Date.now();
    const dealt = dealtSchema.parse(await runDealer(request));
    this.log.info({ keyId, ms: Date.now() - started, fingerprints: recipients.map((r) => fingerprint(r.identity).slice(0, 16)) }, 'RSA key dealt');
    trace.session = keyId;
    // Every signer asked may install its share, so a failed ceremony's entry names them all too.
    trace.signers = traceOf(signers, []);
    const answers = await Promise.all(
      signers.map((c) => {
        const share = dealt.shares.find((s) => s.id === c.id);
        return c.call(signerRoutes.rsa.install, { keyId, params: dealt.params, dealer: dealt.dealer, envelope: share?.envelope, creation });
      }),
    );
    trace.signers = traceOf(signers, answers);
    return dealt.params;
  }

  sign(key: KeyRecord, req: SignRequest, trace: Trace): Promise<Uint8Array> {
    const params = this.publicParams(key);
    const use = useOf('Sign', req.algorithm, req.messageType, req.message, req.evidence);
    if (req.algorithm === RSA_PKCS1_RAW) return this.session(key, trace, use, (session) => rsaSignRequest(params, { session, scheme: 'pkcs1v15', hash: 'none', digest: req.message }, randomBytes));
    const info = ALGORITHM_INFO[req.algorithm];
    if (info.scheme !== 'RSASSA_PKCS1_V1_5' && info.scheme !== 'RSASSA_PSS') throw new ClusterError('invalid-usage', `${req.algorithm} is not valid for ${key.keySpec}`);
    const digest = req.messageType === 'RAW' ? HASHES[info.hash](req.message) : req.message;
    const hash = info.hash.replace('SHA-', 'sha') as SignHash;
    return this.session(key, trace, use, (session) => rsaSignRequest(params, { session, scheme: info.scheme === 'RSASSA_PSS' ? 'pss' : 'pkcs1v15', hash, digest }, randomBytes));
  }

  decrypt(key: KeyRecord, algorithm: EncryptionAlgorithm, ciphertext: Uint8Array, trace: Trace, evidence?: RequestEvidence): Promise<Uint8Array> {
    const params = this.publicParams(key);
    const use = useOf('Decrypt', algorithm, undefined, ciphertext, evidence);
    return this.session(key, trace, use, (session) => rsaDecryptRequest(params, { session, padding: ENCRYPTION_PADDING[algorithm], ciphertext }));
  }

  /** One t-signer session: each partial is verified; a bad one names its signer (→ one retry without it). */
  private session(key: KeyRecord, trace: Trace, use: Use | undefined, makeRequest: (session: string) => RsaRequest): Promise<Uint8Array> {
    const params = this.publicParams(key);
    return this.cluster.runSession(key, async (plan) => {
      // A fresh session (and PSS salt) per attempt: a retry is a new session, never a replay.
      let request: RsaRequest;
      try {
        request = makeRequest(randomUUID());
      } catch (e) {
        if (e instanceof ProtocolError) throw new ClusterError('invalid-usage', e.message);
        throw e;
      }
      // Partials are independent: the first t to arrive are combined (hedged, planner.ts). Every
      // signer asked may release one, so each is named, used or not. Without proofs: they are
      // asked for only if the combination fails (rsa/combine.ts).
      const ask = (prove: boolean) => (c: SignerClient, opts: CallOptions) => c.call(signerRoutes.rsa.partial, { keyId: key.keyId, session: request.session, request, use, prove }, opts);
      const first = await gatherTraced(plan, trace, request.session, ask(false));
      const chosen = first.signers;
      let answers = first.answers;
      let result: RsaCombineResult;
      try {
        result = rsaCombine(params, request, answers.map((a) => a.partial));
      } catch (e) {
        if (!(e instanceof ProtocolError && e.code === 'unproven')) throw e;
        // The same request again, now with proofs: each signer serves it as a repeat, recorded
        // under the same request as its first answer.
        answers = await askAll(trace, request.session, chosen, ask(true), plan.laggardMs(chosen));
        traceSession(trace, request.session, chosen, answers);
        result = rsaCombine(params, request, answers.map((a) => a.partial));
      }
      const fault = result.faults[0];
      if (fault) {
        const culprit = chosen.find((c) => c.id === fault.sender);
        throw new BadPartialError(culprit?.name ?? 'unknown', `bad partial from ${culprit?.name ?? 'a signer'}: ${fault.message}`);
      }
      return result.output;
    });
  }

  /** The key's parsed parameters, parsed again once a resharing changed them in its record. */
  private publicParams(key: KeyRecord): RsaPublicParams {
    if (!key.rsa) throw new ClusterError('internal', `key ${key.keyId} has no RSA parameters`);
    const source = JSON.stringify(key.rsa);
    let cached = this.params.get(key.keyId);
    if (cached?.source !== source) {
      cached = { source, params: parsePublicParams(key.rsa) };
      this.params.set(key.keyId, cached);
    }
    return cached.params;
  }
}

/** Runs the dealer process once: request on stdin, encrypted deal on stdout. */
function runDealer(request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEALER], { stdio: ['pipe', 'pipe', 'pipe'], timeout: CEREMONY_TIMEOUT_MS });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(out).toString('utf8'));
      } catch {
        return reject(new ClusterError('internal', `the RSA dealer exited ${code} without a result`));
      }
      const err = (parsed as { error?: { code?: string; message?: string } }).error;
      if (code !== 0 || err) return reject(new ClusterError(err?.code === 'bad-parameters' || err?.code === 'malformed' ? 'invalid-usage' : 'internal', `RSA key ceremony failed: ${err?.message ?? `exit ${code}`}`));
      resolve(parsed);
    });
    child.stdin.end(JSON.stringify(request));
  });
}
