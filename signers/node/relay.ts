// Protocol messages between signers travel through the gateway inside end-to-end envelopes:
// broadcasts signed, point-to-point messages encrypted to the recipient and signed. This is the
// one place a signer wraps its outbound messages and opens inbound ones.
import { ProtocolError, decodeSecretful, encodeSecretful, isSecretful, type Message } from '../protocols/common.js';
import { type PartyId } from '../../contract/bytes.js';
import type { SignerConfig } from './config.js';
import { openEnvelope, sealEnvelope, signBroadcast, type Envelope } from '../../contract/identity/envelope.js';
import { ReplayGuard } from '../../contract/identity/signed-request.js';
import type { IdentitySecrets, PublicIdentity } from '../../contract/identity/identity.js';
import type { Relayed } from '../../contract/signer-rpc/relayed.js';
import { RpcError } from './rpc.js';

export const keyRecordName = (keyId: string) => `key.${keyId}`;

export class Relay {
  private readonly guard = new ReplayGuard(65_536, 'evict-oldest');
  /** The admitted signers that are not retired: the only ones whose envelopes are opened. */
  private readonly active: Map<PartyId, PublicIdentity>;
  readonly peers: ReadonlyMap<PartyId, PublicIdentity>;

  constructor(
    private readonly config: SignerConfig,
    private readonly identity: IdentitySecrets,
    retired: ReadonlySet<PartyId>,
    /** Refuses signers whose TPM has not answered this signer's credential yet (guard/peers.ts). */
    private readonly checkProven: (ids: readonly number[]) => void,
  ) {
    this.active = new Map(config.peers.map((p) => [p.id, p.identity]));
    this.peers = this.active;
    this.retire(retired);
  }

  /** Trusts the signers admitted by approved proposals (their pinned identities), unless retired. */
  admit(peers: readonly { id: PartyId; identity: PublicIdentity }[], retired: ReadonlySet<PartyId>): void {
    for (const p of peers) if (!retired.has(p.id)) this.active.set(p.id, p.identity);
  }

  /** Stops trusting signers removed by an approved proposal. */
  retire(ids: Iterable<PartyId>): void {
    for (const id of ids) this.active.delete(id);
  }

  /** Refuses a session that includes a signer that is retired (or was never admitted), or not proven by its TPM where that is required. */
  checkActive(ids: readonly number[]): void {
    for (const id of ids) if (!this.active.has(id)) throw new RpcError(403, 'retired-signer', `party ${id} is not an active signer of this cluster`);
    this.checkProven(ids);
  }

  /** Key generation involves every admitted signer, at the cluster's threshold, nobody else. */
  checkKeygenParticipants(ids: readonly number[], threshold: number): void {
    if (ids.length !== this.peers.size || new Set(ids).size !== ids.length) throw new RpcError(403, 'not-all-signers', 'key generation must involve every admitted signer');
    for (const id of ids) if (!this.peers.has(id)) throw new RpcError(403, 'unknown-participant', `party ${id} is not an admitted signer of this cluster`);
    if (threshold !== this.config.threshold) throw new RpcError(403, 'wrong-threshold', `the cluster's threshold is ${this.config.threshold}, not ${threshold}`);
    this.checkProven(ids);
  }

  /**
   * Broadcasts are public JSON. A point-to-point payload is encoded as protocol states are
   * (encodeSecretful): its secret members, Uint8Arrays, travel as raw bytes inside the
   * encryption and never become a string; the plaintext is wiped once sealed.
   */
  seal(purpose: string, outbound: readonly Message[]): Relayed[] {
    return outbound.map((m) => {
      const addr = { purpose, session: m.session, round: m.round, from: m.from };
      if (m.to === 'all') return { from: m.from, to: m.to, envelope: signBroadcast({ ...addr, payload: Buffer.from(JSON.stringify(m.payload)) }, this.identity) };
      const payload = encodeSecretful(m.payload);
      try {
        const envelope: Envelope = sealEnvelope({ ...addr, to: m.to, payload }, this.identity, this.peer(m.to));
        return { from: m.from, to: m.to, envelope };
      } finally {
        payload.fill(0);
      }
    });
  }

  open(purpose: string, session: string, round: number, inbound: readonly Relayed[]): Message[] {
    return inbound.map((r) => {
      if (r.to !== 'all' && r.to !== this.config.id) throw new ProtocolError('wrong-recipient', `message addressed to ${r.to}`, r.from);
      const payload = openEnvelope(r.envelope, this.identity, this.peer(r.from), { purpose, session, round, from: r.from, to: r.to }, this.guard);
      let parsed: unknown;
      try {
        // Secret members come out as fresh Uint8Arrays, which the protocol step's caller wipes.
        parsed = r.to !== 'all' && isSecretful(payload) ? decodeSecretful(payload) : JSON.parse(Buffer.from(payload).toString('utf8'));
      } catch {
        throw new ProtocolError('malformed', 'payload is not a valid encoding', r.from);
      } finally {
        payload.fill(0);
      }
      return { session, round, from: r.from, to: r.to, payload: parsed };
    });
  }

  private peer(id: number): PublicIdentity {
    const p = this.peers.get(id);
    if (!p) throw new ProtocolError('unknown-sender', 'not an admitted signer', id);
    return p;
  }
}
