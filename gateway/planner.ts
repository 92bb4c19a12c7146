// Picks which signers take part in a session and keeps a request moving around signers that are
// dead, hung, slow or failing (docs/operations.md, "Faults and their bounds").
//
// Every attempt sees the key's usable holders in a fresh random order, healthy ones first, so
// load spreads over every healthy subset. A phase whose answers are independent (FROST
// commitments, RSA partials, authentication) is hedged (`Attempt.gather`): t signers are asked at
// once, the others too as soon as one fails or lags HEDGE_AFTER_MS behind the first answer (or,
// with no answer at all, HEDGE_IDLE_MS after the start), and the first t answers win. A signer
// still silent then is marked slow; one that could not be reached or failed internally (HTTP 5xx:
// a full disk) is marked down. Marked signers are asked only as a last resort until a background
// probe of their /health finds them answering with a writable store. Timings are relative where
// they can be, so that a merely loaded cluster is not taken for a faulty one.
//
// A failure is retried within the same request (the signers know the client's evidence as a
// repeat) until quorumWaitMs has passed; a signer's refusal on policy grounds is final.
import { ProtocolError } from '../signers/protocols/common.js';
import { Slots, SlotTimeoutError } from './slots.js';
import { SignerRefusedError, SignerUnavailableError, type CallOptions, type SignerClient, type SignerProbe } from './signer-client.js';

/** A signer this far behind the first answer of a phase is given up on: spares are asked, it is marked slow. */
export const HEDGE_AFTER_MS = 500;
/** With no answer at all this long after a phase started, the spares are asked too (a phase of one answer: half). */
export const HEDGE_IDLE_MS = 1000;
/**
 * In a request's first attempt, while a spare could stand in, ECDSA's start gets this long, and
 * in FROST's signing step a signer this far behind the other's answer is given up; the attempt
 * then fails over.
 */
export const FAST_STEP_MS = 1000;
/** How often marked signers are probed, and how long one probe may take. */
export const PROBE_EVERY_MS = 500;
export const PROBE_TIMEOUT_MS = 1000;
/** The longest a request waits for one of the sessionsInFlight slots (slots.ts). */
export const SLOT_WAIT_MS = 30_000;

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

/** Why a signer is asked last; `probed`: its health probe failed too (it is taken as gone until one succeeds). */
type Mark = { kind: 'slow' | 'down'; reason: string; probed?: boolean };

/** One answer from any of the signers `ids`, hedged like a session's phase (Cluster.firstAnswer). */
export type FirstAnswer = <A>(ids: readonly number[], ask: (c: SignerClient, opts: CallOptions) => Promise<A>) => Promise<A>;

/** A failure another signer may make up for: it did not answer, or failed rather than refused. */
export const isTransient = (e: unknown): boolean => e instanceof SignerUnavailableError || (e instanceof SignerRefusedError && (e.status >= 500 || e.code === 'internal'));
/** No answer in time: the signer may be slow rather than gone, so it is asked last, not left out. */
const isTimeout = (e: unknown): boolean => e instanceof SignerUnavailableError && e.timedOut;
const isBadPartial = (e: unknown): boolean => e instanceof BadPartialError || (e instanceof ProtocolError && e.code === 'bad-partial');

/** Why a signer's part in a session was given up: a partial that did not verify, no answer in time, no connection, or an internal failure. */
export type AbortReason = 'bad-partial' | 'timeout' | 'unreachable' | 'failed';
const abortReason = (e: unknown): AbortReason | undefined =>
  isBadPartial(e) ? 'bad-partial' : isTimeout(e) ? 'timeout' : e instanceof SignerUnavailableError ? 'unreachable' : isTransient(e) ? 'failed' : undefined;

export class Planner {
  private readonly marks = new Map<number, Mark>();
  private prober: NodeJS.Timeout | undefined;
  private readonly probing = new Set<number>();
  private readonly slots: Slots;
  private readonly quorumWaitMs: number;
  /** Failures already told to onAbort: one that ends a phase may end its attempt too. */
  private readonly told = new WeakSet<object>();

  constructor(
    private readonly clients: ReadonlyMap<number, SignerClient>,
    /** The gateway's quorumWaitMs (how long a request waits for t signers' answers, over all its attempts) and sessionsInFlight. */
    limits: { quorumWaitMs: number; sessionsInFlight: number },
    private readonly log: (level: 'info' | 'warn', what: string) => void = () => undefined,
    /** Told each time a signer's failure ends its part in a session (counted by gateway/metrics.ts). */
    private readonly onAbort: (c: SignerClient, reason: AbortReason) => void = () => undefined,
  ) {
    this.quorumWaitMs = limits.quorumWaitMs;
    this.slots = new Slots(limits.sessionsInFlight);
  }

  /** Marks a signer; it is asked only as a last resort until a probe re-admits it. */
  mark(c: SignerClient, kind: Mark['kind'], reason: string, probed = false): void {
    const was = this.marks.get(c.id);
    if (was?.kind === 'down' && (kind === 'slow' || (was.probed && !probed))) return;
    if (!was || (probed && !was.probed)) this.log('warn', `${c.name} marked ${kind}${probed ? ' by its health probe' : ''} (${reason}); probing it until it answers`);
    this.marks.set(c.id, { kind, reason, probed });
    this.prober ??= setInterval(() => this.probe(), PROBE_EVERY_MS).unref();
  }

  /** A health answer (a probe's or the gateway's /health): re-admits a signer, or marks it down (silent, or its store not writable). */
  observe(c: SignerClient, p: SignerProbe): void {
    if (p.healthy && this.marks.delete(c.id)) this.log('info', `${c.name} answers its health probe again; planned with as before`);
    else if (!p.healthy) this.mark(c, 'down', p.detail, true);
  }

  /** Tells onAbort of a signer's failure, once, if it is one a session gives the signer up for. */
  aborted(c: SignerClient, e: unknown): void {
    const reason = abortReason(e);
    if (!reason || this.told.has(e as object)) return;
    this.told.add(e as object);
    this.onAbort(c, reason);
  }

  isMarked(id: number): boolean {
    return this.marks.has(id);
  }

  markOf(id: number): Mark['kind'] | undefined {
    return this.marks.get(id)?.kind;
  }

  close(): void {
    clearInterval(this.prober);
    this.prober = undefined;
  }

  private probe(): void {
    if (this.marks.size === 0) return this.close();
    for (const id of this.marks.keys()) {
      const c = this.clients.get(id);
      if (!c) {
        this.marks.delete(id);
        continue;
      }
      if (this.probing.has(id)) continue;
      this.probing.add(id);
      void c
        .probe(PROBE_TIMEOUT_MS)
        .then((p) => this.observe(c, p))
        .finally(() => this.probing.delete(id));
    }
  }

  /**
   * Usable signers in the order to ask them: healthy ones first, each group shuffled — or, when
   * `steady`, by id, so that a key's uses go to the same t signers while they serve (a rate
   * limit, which each signer keeps for itself, then allows as many uses as it says).
   */
  private order(ids: readonly number[], steady: boolean): SignerClient[] {
    const shuffled = [...ids].map((id) => ({ id, r: steady ? id : Math.random() })).sort((a, b) => a.r - b.r);
    return [...shuffled.filter((s) => !this.isMarked(s.id)), ...shuffled.filter((s) => this.isMarked(s.id))].map((s) => this.clients.get(s.id)!);
  }

  /**
   * Runs `attempt` with `t` of the `holders` until it succeeds. A signer whose failure ended an
   * attempt (unreachable, failed internally, or a bad partial, once) is left out of the next, one
   * that did not answer in time is asked last; any other failure is final. Fewer than t signers
   * left, or quorumWaitMs passed: QuorumUnavailableError.
   */
  async run<T>(holders: readonly number[], t: number, attempt: (plan: Attempt) => Promise<T>, onEvent?: (what: string) => void, steady = false): Promise<T> {
    try {
      return await this.slots.run(SLOT_WAIT_MS, () => this.attempts(holders, t, attempt, steady, onEvent));
    } catch (e) {
      throw e instanceof SlotTimeoutError ? new QuorumUnavailableError(`the gateway is busy: ${e.message}`) : e;
    }
  }

  private async attempts<T>(holders: readonly number[], t: number, attempt: (plan: Attempt) => Promise<T>, steady: boolean, onEvent?: (what: string) => void): Promise<T> {
    const excluded = new Set<number>();
    const deadline = Date.now() + this.quorumWaitMs;
    let badPartialRetries = 1;
    for (let n = 0; ; n++) {
      const usable = holders.filter((id) => this.clients.has(id) && !excluded.has(id));
      if (usable.length < t) throw new QuorumUnavailableError(`only ${usable.length} of the ${holders.length} signers holding this key are left to ask; ${t} are needed`);
      // Signers whose health probe failed too are not waited for: with fewer than t others, fail now.
      const gone = usable.filter((id) => this.marks.get(id)?.probed);
      if (usable.length - gone.length < t)
        throw new QuorumUnavailableError(`${gone.map((id) => `${this.clients.get(id)!.name} (${this.marks.get(id)!.reason})`).join(', ')} fail their health probes; ${t} of the ${holders.length} signers holding this key are needed`);
      if (Date.now() >= deadline) throw new QuorumUnavailableError(`no ${t} signers served the request within ${this.quorumWaitMs} ms`);
      const plan = new Attempt(this, this.order(usable, steady), t, deadline, n === 0);
      try {
        return await attempt(plan);
      } catch (e) {
        for (const id of plan.failed) excluded.add(id);
        const culprit = attribute(e, plan.candidates);
        if (culprit) this.aborted(culprit, e);
        if (isTransient(e) && culprit) {
          this.mark(culprit, isTimeout(e) ? 'slow' : 'down', (e as Error).message);
          if (!isTimeout(e)) excluded.add(culprit.id);
          onEvent?.(`${culprit.name} failed (${(e as Error).message}); retrying the request ${isTimeout(e) ? 'with it last' : 'without it'}`);
          continue;
        }
        if (isBadPartial(e) && culprit && badPartialRetries-- > 0) {
          excluded.add(culprit.id);
          onEvent?.(`${culprit.name} sent a bad partial (${(e as Error).message}); retrying once with another set`);
          continue;
        }
        throw e;
      }
    }
  }
}

/** One attempt's candidates (preferred first) and its hedged phase. */
export class Attempt {
  /** Signers that failed in this attempt: the next one leaves them out. */
  readonly failed = new Set<number>();
  /** Every signer asked so far in this attempt's phase, in order. */
  readonly asked: SignerClient[] = [];

  constructor(
    private readonly planner: Planner,
    readonly candidates: readonly SignerClient[],
    readonly t: number,
    /** When the request stops waiting for signers (Planner.run). */
    private readonly deadline: number,
    /** The request's first attempt: only it fails over fast, so that a loaded cluster is not failed over and over. */
    private readonly first: boolean,
  ) {}

  /** Whether a candidate is to be asked only as a last resort (marked slow or down, or failed in this attempt). */
  isLastResort(c: SignerClient): boolean {
    return this.failed.has(c.id) || this.planner.isMarked(c.id);
  }

  /** The t signers a fixed-set protocol (ECDSA) starts with, and the time its start may take (within the request's wait). */
  fixed(): { chosen: SignerClient[]; startMs: number } {
    const chosen = this.candidates.slice(0, this.t);
    const left = Math.max(1, this.deadline - Date.now());
    return { chosen, startMs: this.hasSpare(chosen) ? Math.min(FAST_STEP_MS, left) : left };
  }

  /** How far a signer of `chosen` may lag behind the first answer of a later step while a spare could stand in (askAll). */
  laggardMs(chosen: readonly SignerClient[]): number | undefined {
    return this.hasSpare(chosen) ? FAST_STEP_MS : undefined;
  }

  /** Whether another candidate could stand in: one not chosen that has not failed here (a signer marked only slow may well answer). */
  private hasSpare(chosen: readonly SignerClient[]): boolean {
    return this.first && this.candidates.some((c) => !chosen.includes(c) && !this.failed.has(c.id) && this.planner.markOf(c.id) !== 'down');
  }

  /**
   * Asks the candidates for independent answers and resolves with the first t, in the order they
   * came, and the signers asked whose answer is not used (they may still act on the request).
   * `ask` throws a BadPartialError or ProtocolError for an answer that does not verify: another
   * signer is asked instead. A refusal is final; fewer than t possible answers fails the phase.
   */
  gather<A>(ask: (c: SignerClient, opts: CallOptions) => Promise<A>): Promise<{ answers: { client: SignerClient; answer: A }[]; unused: SignerClient[] }> {
    const { candidates, t, planner, deadline } = this;
    const abort = new AbortController();
    const answers: { client: SignerClient; answer: A }[] = [];
    const pending = new Map<number, number>(); // id → when asked
    const problems: { client: SignerClient; error: unknown }[] = [];
    let next = 0;
    let hedge: NodeJS.Timeout | undefined;

    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (fail?: unknown) => {
        done = true;
        clearTimeout(hedge);
        const now = Date.now();
        // Asked long enough ago and still silent while t others answered: slow.
        if (fail === undefined) for (const [id, at] of pending) if (now - at >= HEDGE_AFTER_MS) planner.mark(candidates.find((c) => c.id === id)!, 'slow', `no answer within ${now - at} ms while others answered`);
        abort.abort(new Error('answer no longer needed'));
        if (fail !== undefined) return reject(fail);
        const used = new Set(answers.map((a) => a.client.id));
        resolve({ answers, unused: candidates.slice(0, next).filter((c) => !used.has(c.id)) });
      };
      const hedgeIn = (ms: number) => {
        clearTimeout(hedge);
        if (next < candidates.length) hedge = setTimeout(() => {
          while (!done && next < candidates.length) launch();
        }, ms);
      };
      const launch = () => {
        const c = candidates[next++]!;
        this.asked.push(c);
        pending.set(c.id, Date.now());
        ask(c, { timeoutMs: Math.max(1, deadline - Date.now()), signal: abort.signal }).then(
          (answer) => {
            pending.delete(c.id);
            if (done) return;
            answers.push({ client: c, answer });
            if (answers.length === t) finish();
            else if (answers.length === 1) hedgeIn(HEDGE_AFTER_MS);
          },
          (error: unknown) => {
            pending.delete(c.id);
            if (done) return;
            if (!isTransient(error) && !isBadPartial(error)) return finish(error);
            if (!isTimeout(error)) this.failed.add(c.id);
            planner.aborted(c, error);
            problems.push({ client: c, error });
            if (isTransient(error)) planner.mark(c, isTimeout(error) ? 'slow' : 'down', (error as Error).message);
            if (next < candidates.length) launch();
            else if (answers.length + pending.size < t) finish(this.shortfall(problems, answers.length));
          },
        );
      };
      // A marked signer among the first t: ask everyone now rather than wait for it.
      const first = candidates.slice(0, t).some((c) => planner.isMarked(c.id)) ? candidates.length : t;
      while (next < first) launch();
      hedgeIn(t === 1 ? HEDGE_AFTER_MS : HEDGE_IDLE_MS);
    });
  }

  /** Why a phase could not get t answers: a bad partial names its signer; otherwise the quorum is short. */
  private shortfall(problems: { client: SignerClient; error: unknown }[], answered: number): Error {
    const bad = problems.find((p) => isBadPartial(p.error));
    if (bad) return bad.error as Error;
    const why = problems.map((p) => (p.error as Error).message).join('; ');
    return new QuorumUnavailableError(`${answered} of the ${this.candidates.length} signers asked answered in time; ${this.t} are needed (${why})`);
  }
}

/** The signer a failure is attributed to, if any. */
function attribute(e: unknown, chosen: readonly SignerClient[]): SignerClient | undefined {
  if (e instanceof SignerUnavailableError || e instanceof SignerRefusedError || e instanceof BadPartialError) return chosen.find((c) => c.name === e.signer);
  if (e instanceof ProtocolError && e.sender !== undefined) return chosen.find((c) => c.id === e.sender);
  return undefined;
}
