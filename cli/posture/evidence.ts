// Where `mpchsm doctor` and `mpchsm audit verify` get their evidence about a running cluster:
// the identities they pin (from the genesis, or from the files of the cluster directory `up`
// made — never from the gateway), the parties' signed posture reports asked through the
// gateway with a fresh nonce and checked against those pins (contract/posture/report.ts), and
// the parties' audit logs read through the gateway in pages (gateway/posture.ts).
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { z } from 'zod';
import { parseLog, type ParsedLog } from '../../audit/verify.js';
import type { PublicIdentity } from '../../contract/identity/identity.js';
import { verifyPosture, type PostureReport } from '../../contract/posture/report.js';
import { readGenesis } from '../../policy/genesis.js';
import { call } from '../approve.js';
import { readCluster } from '../cluster-dir.js';
import { pinnedGateway, pinnedSigners } from '../pinned.js';

/** The identities a check trusts, and where they come from. */
export interface Pins {
  source: string;
  gateway: PublicIdentity;
  /** `attestation`: a founding signer's, from the genesis (its quoted PCRs are compared with those it reports). */
  signers: { name: string; identity: PublicIdentity; attestation?: unknown }[];
  threshold?: number | undefined;
  /** The key administrators' names, where the source lists them. */
  administrators?: string[];
}

/** Pins from a genesis every founding administrator signed (readGenesis checks it). */
export function pinsFromGenesis(file: string): Pins {
  const g = readGenesis(file);
  return {
    source: file,
    gateway: g.gateway.identity,
    signers: g.signers.map((s) => ({ name: s.name, identity: s.identity, ...(s.attestation ? { attestation: s.attestation } : {}) })),
    threshold: g.threshold,
    administrators: g.administrators.map((a) => a.name),
  };
}

/**
 * The pins `--genesis` names: a genesis file, or the cluster directory `up` made (its genesis for
 * the founding signers, DIR/signers/NAME/identity.json for those admitted since, layout.ts).
 */
export function pinsFor(genesis: string): Pins {
  if (!statSync(genesis).isDirectory()) return pinsFromGenesis(genesis);
  const c = readCluster(genesis);
  if (typeof c === 'string') throw new Error(c);
  return pinsFromDir(c.L.root, c.signers, c.threshold);
}

/** Pins from a cluster directory made by `mpchsm up`: DIR/gateway/identity.json, DIR/signers/NAME/identity.json. */
export function pinsFromDir(root: string, signers: readonly string[], threshold: number | undefined): Pins {
  return { source: root, gateway: pinnedGateway(root), signers: pinnedSigners(root, signers).map(({ party: _party, ...s }) => s), threshold };
}

/** Who asks the gateway: a principal's env file NAME.env in DIR (or DIR/principals). */
export interface Asker {
  dir: string;
  as: string;
}

export interface PartyPosture {
  name: string;
  role: 'gateway' | 'signer';
  /** The report, checked against the pin; absent when there is none or it failed (`problem`). */
  report?: PostureReport;
  /** `not-listed`: the gateway does not name it among the active signers (removed since the genesis, or hidden). */
  problem?: { code: 'unreachable' | 'not-listed' | 'forged-report'; message: string };
}

const postureAnswer = z.object({
  Gateway: z.unknown(),
  Signers: z.array(z.object({ Name: z.string(), Report: z.unknown().optional(), Error: z.string().optional() })).max(1000),
});

/** Checks a Posture answer against the pins and the nonce asked: each party's report or what is wrong with it. */
export function checkPosture(raw: unknown, pins: Pins, nonce: string): { parties: PartyPosture[]; unpinned: string[] } {
  const answer = postureAnswer.parse(raw);
  const check = (name: string, role: PartyPosture['role'], pinned: PublicIdentity, report: unknown, error?: string): PartyPosture => {
    if (report === undefined && error === undefined)
      return { name, role, problem: { code: 'not-listed', message: `the gateway does not list ${name} among the active signers (removed from the cluster since, or hidden by the gateway)` } };
    if (report === undefined) return { name, role, problem: { code: 'unreachable', message: `${name} gave no report through the gateway: ${error}` } };
    try {
      return { name, role, report: verifyPosture(report, pinned, nonce) };
    } catch (e) {
      return { name, role, problem: { code: 'forged-report', message: `${name}'s report is refused: ${(e as Error).message}` } };
    }
  };
  const parties = [check('gateway', 'gateway', pins.gateway, answer.Gateway)];
  for (const s of pins.signers) {
    const got = answer.Signers.find((a) => a.Name === s.name);
    parties.push(check(s.name, 'signer', s.identity, got?.Report, got?.Error));
  }
  const unpinned = answer.Signers.map((a) => a.Name).filter((n) => !pins.signers.some((s) => s.name === n));
  return { parties, unpinned };
}

/** Asks every party's report through the gateway over a fresh nonce (`packages`: with the signers' key package digests), and checks each. */
export async function fetchPosture(asker: Asker, pins: Pins, opts: { packages?: boolean } = {}): Promise<{ parties: PartyPosture[]; unpinned: string[] }> {
  const nonce = randomBytes(32).toString('hex');
  return checkPosture(await call(asker.dir, asker.as, 'MpcHsm.Posture', { Nonce: nonce, ...(opts.packages ? { Packages: true } : {}) }), pins, nonce);
}

const pageAnswer = z.object({ Lines: z.array(z.string()), More: z.boolean() });
const PAGE_LINES = 5000;
/** Bounds the pages of one log (a gateway answering More forever): 20 million entries. */
const MAX_PAGES = 4000;

/** A party's audit log read through the gateway, page by page, parsed as the file would be. */
export async function fetchLog(asker: Asker, party: string): Promise<ParsedLog> {
  const lines: string[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const a = pageAnswer.parse(await call(asker.dir, asker.as, 'MpcHsm.AuditLog', { Party: party, From: lines.length, Limit: PAGE_LINES }));
    lines.push(...a.Lines);
    if (!a.More || a.Lines.length === 0) break;
  }
  return parseLog(Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8'), party);
}
