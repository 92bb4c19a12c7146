// The signers the gateway asks: those configured or admitted, less those removed by approved
// proposals (DIR/retired-signers.json), and those whose addition is approved but who are not
// admitted yet (DIR/signer-admissions.json, gateway/add-signer.ts). An admitted signer joins
// the configuration file; names, party ids and identities are never reused — but a restored
// signer (an approved RestoreSigner) comes back under its name and party id with a new identity,
// awaiting admission like a newcomer, and once admitted replaces its lost entry.
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import { gatewayPaths, signerEntrySchema, type GatewayConfig, type SignerEntry } from '../config.js';
import type { SignerClient, SignerRefusedError } from '../signer-client.js';
import { readJson } from './chain.js';

/** Signers removed by approved proposals (party ids), kept by the gateway beside its change log. */
const retiredFileSchema = z.strictObject({ retired: z.array(z.number().int().min(1).max(255)) });
/** Signers added by approved proposals that are not yet admitted (gateway/add-signer.ts). */
const admissionsFileSchema = z.strictObject({ pending: z.array(signerEntrySchema) });

export class SignerRoster {
  private clients: SignerClient[];
  private readonly retiredFile: string;
  private retiredIds: Set<number>;
  private readonly admissionsFile: string;
  private pendingAdmissions: SignerEntry[];

  constructor(
    private readonly dir: string,
    private readonly config: GatewayConfig,
    /** A client of the gateway's own for a signer (Cluster.clientFor). */
    private readonly clientFor: (s: SignerEntry) => SignerClient,
  ) {
    this.retiredFile = path.join(dir, 'retired-signers.json');
    const retired = readJson(this.retiredFile);
    this.retiredIds = new Set(retired === undefined ? [] : retiredFileSchema.parse(retired).retired);
    this.admissionsFile = path.join(dir, 'signer-admissions.json');
    const admissions = readJson(this.admissionsFile);
    this.pendingAdmissions = admissions === undefined ? [] : admissionsFileSchema.parse(admissions).pending;
    this.clients = config.signers.map(clientFor);
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  /** The signers not removed: the only ones asked anything. */
  active(): SignerClient[] {
    return this.clients.filter((c) => !this.retiredIds.has(c.id));
  }

  /** Party ids of the signers not removed, ascending. */
  activeIds(): number[] {
    return this.config.signers.map((s) => s.id).filter((id) => !this.retiredIds.has(id)).sort((a, b) => a - b);
  }

  /** Signers removed by approved proposals (party ids). */
  get retired(): ReadonlySet<number> {
    return this.retiredIds;
  }

  /** A configured (or admitted) signer, removed or not. */
  configured(name: string): SignerEntry | undefined {
    return this.config.signers.find((x) => x.name === name);
  }

  /** Every signer configured, admitted or awaiting admission. */
  known(): SignerEntry[] {
    return [...this.config.signers, ...this.pendingAdmissions];
  }

  /** Signers whose addition is approved but who are not admitted yet. */
  awaitingAdmission(): string[] {
    return this.pendingAdmissions.map((s) => s.name);
  }

  /** A signer added by an approved proposal: pending admission, or admitted (then in the configuration). */
  addedSigner(name: string): { entry: SignerEntry; admitted: boolean } | undefined {
    const pending = this.pendingAdmissions.find((s) => s.name === name);
    if (pending) return { entry: pending, admitted: false };
    const s = this.configured(name);
    return s && !this.retiredIds.has(s.id) ? { entry: s, admitted: true } : undefined;
  }

  /** An approved addition, awaiting its admission. */
  awaitAdmission(entry: SignerEntry): Promise<void> {
    return this.savePendingAdmissions([...this.pendingAdmissions, entry]);
  }

  /** An approved restoration: the party's new identity, awaiting its admission. */
  awaitReadmission(entry: SignerEntry): Promise<void> {
    return this.savePendingAdmissions([...this.pendingAdmissions.filter((s) => s.id !== entry.id), entry]);
  }

  /** An enrolled newcomer (or restored signer, in its lost entry's place): in the configuration (saved), with a client of the gateway's. */
  async admit(entry: SignerEntry): Promise<void> {
    this.config.signers = [...this.config.signers.filter((s) => s.id !== entry.id), entry].sort((a, b) => a.id - b.id);
    await writeFileAtomic(gatewayPaths(this.dir).config, Buffer.from(JSON.stringify(this.config, null, 2) + '\n'), 0o600);
    for (const c of this.clients.filter((c) => c.id === entry.id)) c.close();
    this.clients = [...this.clients.filter((c) => c.id !== entry.id), this.clientFor(entry)];
  }

  /** Once admitted, no longer awaiting admission. */
  admitted(id: number): Promise<void> {
    return this.savePendingAdmissions(this.pendingAdmissions.filter((s) => s.id !== id));
  }

  /** A signer removed by an approved proposal: never asked anything again. */
  async retire(id: number): Promise<void> {
    const retired = [...this.retiredIds, id].sort((a, b) => a - b);
    await writeFileAtomic(this.retiredFile, Buffer.from(JSON.stringify({ retired }) + '\n'), 0o600);
    this.retiredIds = new Set(retired);
  }

  /** What administrators' tools read of each signer. */
  describe(): { Name: string; Id: number; State: string }[] {
    return [
      ...this.config.signers.filter((s) => !this.pendingAdmissions.some((p) => p.id === s.id)).map((s) => ({ Name: s.name, Id: s.id, State: this.retiredIds.has(s.id) ? 'Retired' : 'Active' })),
      ...this.pendingAdmissions.map((s) => ({ Name: s.name, Id: s.id, State: 'AwaitingAdmission' })),
    ];
  }

  private async savePendingAdmissions(pending: SignerEntry[]): Promise<void> {
    await writeFileAtomic(this.admissionsFile, Buffer.from(JSON.stringify({ pending }) + '\n'), 0o600);
    this.pendingAdmissions = pending;
  }
}

/** A signer's refusal message without the client's "signer X refused:" prefix. */
export const refusal = (e: SignerRefusedError) => e.message.replace(/^signer \S+ refused: /, '');
