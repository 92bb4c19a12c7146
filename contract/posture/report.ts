// A party's signed report about itself (`mpchsm doctor`'s evidence about segmentation): which
// host it runs on, as whom, who owns its files, how its store is sealed, how far its state and
// its audit log have come — signed with the party's identity key over the asker's fresh nonce,
// so the gateway that relays it can neither forge one nor replay an old one. What it proves:
// the holder of that identity key said this, now. What it cannot prove: that the facts are
// true — it is the party's own word about its host (docs/operations.md). A signer also says
// which backup of it was made last (backups.ts): made, its word; never that it was verified.
import { z } from 'zod';
import { canonicalDigest, DOMAINS } from '../canonical.js';
import { fromHex, toHex } from '../bytes.js';
import { ed25519Sign, ed25519Verify } from '../identity/curve25519.js';
import { fingerprint, type IdentitySecrets, type PublicIdentity } from '../identity/identity.js';
import { lastBackupSchema } from './backups.js';
import { hostFacts } from './host.js';

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);
/** A nonce the asker draws: 16 to 64 random bytes, hex. */
export const postureNonceSchema = z.string().regex(/^[0-9a-f]{32,128}$/);
const account = z.strictObject({ uid: z.number().int().min(0), user: z.string().max(64) });

export const postureReportSchema = z.strictObject({
  /** The party's name and identity fingerprint, as pinned by whoever checks the report. */
  party: z.string().max(64),
  role: z.enum(['signer', 'gateway']),
  fingerprint: hex32,
  nonce: postureNonceSchema,
  /** Milliseconds since the epoch, by the party's clock. */
  time: z.number().int().min(0),
  /** SHA-256 of /etc/machine-id (of the hostname where there is none): which host, without naming it twice. */
  hostId: hex32,
  hostname: z.string().max(253),
  /** The account the party's process runs as. */
  operator: account,
  /** The account owning the party's data directory: who can replace its files. */
  admin: account,
  /** The sealer kind of the party's store (contract/io/seal.ts), e.g. software/… or a TPM's. */
  seal: z.string().max(128),
  /**
   * The party's monotonic state counters: for a signer, the governance version in force and the
   * last governance change (ledger seq) it applied (signers/node/guard); for the gateway, its
   * governance version. They only grow: a lower one than seen before is a rolled-back store.
   */
  epoch: z.strictObject({ governanceVersion: z.number().int().min(0), ledgerSeq: z.number().int().min(0).optional() }),
  /** The last durable entry of the party's audit log: a page of the log ending short of it was cut. */
  auditHead: z.strictObject({ seq: z.number().int().min(0), hash: hex32 }),
  /** A signer's last backup made, as its data directory records it (backups.ts); absent when none is. */
  lastBackup: lastBackupSchema.optional(),
  /**
   * A TPM-sealed signer's PCRs its attestation quoted, read afresh for this report: the selection
   * and its digest as a quote computes it (`mpchsm doctor` compares it with the quoted one).
   */
  pcrs: z.strictObject({ selection: z.string().max(200), digest: hex32 }).optional(),
  /**
   * Asked for: the SHA-256 of the public package of each key share this signer holds, by record
   * (`key.ID`): how `backup verify` from another host tells a current backup from a stale one.
   */
  packages: z
    .record(z.string().regex(/^key\.[0-9a-f-]{36}$/), hex32)
    .refine((p) => Object.keys(p).length <= 100_000, 'at most 100000 packages')
    .optional(),
});
export type PostureReport = z.infer<typeof postureReportSchema>;

export const signedPostureSchema = z.strictObject({ report: postureReportSchema, signature: z.string().regex(/^[0-9a-f]{128}$/) });
export type SignedPosture = z.infer<typeof signedPostureSchema>;

export class PostureError extends Error {
  override readonly name = 'PostureError';
}

/** Signs `report` with the party's identity signing key. */
export function signPosture(report: PostureReport, signSecretKey: Uint8Array): SignedPosture {
  const r = postureReportSchema.parse(report);
  return { report: r, signature: toHex(ed25519Sign(canonicalDigest(DOMAINS.posture, r), signSecretKey)) };
}

/**
 * A party's report about itself over the asker's `nonce`, signed with its identity key: its
 * host facts (host.ts) read now from its data directory `dataDir`, with its seal, epoch and audit
 * head as the party gives them. The signer daemon and the gateway report alike through this.
 */
export function reportSelf(o: {
  identity: IdentitySecrets;
  role: PostureReport['role'];
  nonce: string;
  dataDir: string;
  seal: string;
  epoch: PostureReport['epoch'];
  auditHead: PostureReport['auditHead'];
  lastBackup?: PostureReport['lastBackup'];
  pcrs?: PostureReport['pcrs'];
  packages?: PostureReport['packages'];
}): SignedPosture {
  const { identity, dataDir, ...given } = o;
  return signPosture({ ...given, party: identity.public.name, fingerprint: identity.fingerprint, time: Date.now(), ...hostFacts(dataDir) }, identity.signSecretKey);
}

/**
 * Checks a relayed report against the identity pinned for the party (never one the relay
 * names) and the nonce the asker drew: refuses a malformed report, another party's, a replayed
 * one, and any edited field. Returns the report.
 */
export function verifyPosture(raw: unknown, pinned: PublicIdentity, nonce: string): PostureReport {
  const parsed = signedPostureSchema.safeParse(raw);
  if (!parsed.success) throw new PostureError(`not a posture report (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  const { report, signature } = parsed.data;
  if (report.fingerprint !== fingerprint(pinned) || report.party !== pinned.name)
    throw new PostureError(`the report is ${report.party}'s (${report.fingerprint.slice(0, 16)}…), not from the identity pinned for ${pinned.name}`);
  if (report.nonce !== nonce) throw new PostureError('the report answers another nonce than the one asked: a replay');
  if (!ed25519Verify(fromHex(signature), canonicalDigest(DOMAINS.posture, report), fromHex(pinned.signPublicKey)))
    throw new PostureError(`the report's signature does not verify under ${pinned.name}'s pinned key: forged or edited`);
  return report;
}
