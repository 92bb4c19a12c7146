// Picks which t signers take part in a session, and retries around dead or faulty ones.
//
// A dead or slow signer costs one bounded timeout and is then avoided for a while; a signer
// whose partial failed verification is named and excluded from the one retry.
import { ProtocolError } from '../signers/protocols/common.js';
import { SignerUnavailableError, type SignerClient } from './signer-client.js';

const DOWN_FOR_MS = 10_000;

/** Not enough signers are reachable to reach the threshold. */
export class QuorumUnavailableError extends Error {
  override readonly name = 'QuorumUnavailableError';
}

/** A signer produced a partial result that failed verification. */
export class BadPartialError extends Error {
  override readonly name = 'BadPartialError';
  constructor(
    readonly signer: string,
    message: string,
  ) {
    super(message);
  }
}

export class Planner {
  private readonly downUntil = new Map<number, number>();

  constructor(private readonly clients: ReadonlyMap<number, SignerClient>) {}

  markDown(id: number): void {
    this.downUntil.set(id, Date.now() + DOWN_FOR_MS);
  }

  private isUp(id: number): boolean {
    return (this.downUntil.get(id) ?? 0) <= Date.now();
  }

  /**
   * Runs `session` with `t` of the `holders`, preferring signers not recently down. On an
   * unavailable signer, tries again without it while enough remain; on a bad partial, names the
   * signer and retries once with another set; any other failure is final.
   */
  async run<T>(holders: readonly number[], t: number, session: (chosen: SignerClient[]) => Promise<T>, onEvent?: (what: string) => void): Promise<T> {
    const excluded = new Set<number>();
    let badPartialRetries = 1;
    for (;;) {
      const usable = holders.filter((id) => this.clients.has(id) && !excluded.has(id));
      const ordered = [...usable.filter((id) => this.isUp(id)), ...usable.filter((id) => !this.isUp(id))];
      if (ordered.length < t)
        throw new QuorumUnavailableError(`only ${ordered.length} of the ${holders.length} signers holding this key are reachable; ${t} are needed`);
      const chosen = ordered.slice(0, t).map((id) => this.clients.get(id)!);
      try {
        return await session(chosen);
      } catch (e) {
        const culprit = attribute(e, chosen);
        if (e instanceof SignerUnavailableError && culprit) {
          this.markDown(culprit.id);
          excluded.add(culprit.id);
          onEvent?.(`${culprit.name} unavailable (${e.message}); retrying without it`);
          continue;
        }
        if ((e instanceof BadPartialError || (e instanceof ProtocolError && e.code === 'bad-partial')) && culprit && badPartialRetries-- > 0) {
          excluded.add(culprit.id);
          onEvent?.(`${culprit.name} sent a bad partial (${e.message}); retrying once with another set`);
          continue;
        }
        throw e;
      }
    }
  }
}

/** The signer a failure is attributed to, if any. */
function attribute(e: unknown, chosen: SignerClient[]): SignerClient | undefined {
  if (e instanceof SignerUnavailableError || e instanceof BadPartialError) return chosen.find((c) => c.name === e.signer);
  if (e instanceof ProtocolError && e.sender !== undefined) return chosen.find((c) => c.id === e.sender);
  return undefined;
}
