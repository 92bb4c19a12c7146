// Repeats of a signed request. SigV4 clients that send the same request twice within a second
// (same payload, same X-Amz-Date) send byte-identical requests with one signature; AWS serves
// each. Here a repeat is the same request: it waits for the first (if still running) and gets
// the first's answer, so one CreateKey makes one key and one Sign reaches the signers once.
// A request is identified by everything its signature covers (method, path, query, the signed
// headers and the body), so only a request that would authenticate as the first can match it.
// Answers are kept until the request's date leaves the ±5 minute window; plaintexts are not
// kept (a repeated Decrypt runs again: the signers serve it as a repeat); the store is bounded.
import { createHash } from 'node:crypto';
import type { ReceivedRequest } from '../../policy/index.js';

/** What a successful request answered, to give its repeats. */
export interface Answer {
  requestId: string;
  operation: string;
  keyId?: string;
  body: string;
}

const WINDOW_MS = 5 * 60_000;
const MAX_ANSWERS = 10_000;
const MAX_BYTES = 64 * 1024 * 1024;
/** Operations whose answers carry plaintext: never kept beyond the first's in-flight waiters. */
const UNKEPT = new Set(['Decrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateRandom', 'ReEncrypt']);

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The request's identity (undefined when it is not a well-formed signed request) and its date. */
function identify(req: ReceivedRequest): { id: string; signedAt: number } | undefined {
  const auth = req.headers.authorization;
  const date = AMZ_DATE.exec(req.headers['x-amz-date']?.[0] ?? '');
  const signed = auth?.length === 1 ? /SignedHeaders=([a-z0-9;-]+)/.exec(auth[0]!)?.[1] : undefined;
  if (!auth || !signed || !date) return undefined;
  const h = createHash('sha256');
  const part = (s: string | Uint8Array) => h.update(`${s.length}:`).update(s);
  part(req.method);
  part(req.path);
  part(JSON.stringify(Object.entries(req.query).sort(([a], [b]) => (a < b ? -1 : 1))));
  part(auth[0]!);
  for (const name of signed.split(';')) part(`${name}=${JSON.stringify(req.headers[name] ?? null)}`);
  part(req.body);
  return { id: h.digest('hex'), signedAt: Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!) };
}

export type Claim = { earlier: Answer } | { settle(answer: Answer | undefined): void };

export class RepeatAnswers {
  private readonly kept = new Map<string, { answer: Answer; until: number }>();
  private readonly running = new Map<string, Promise<Answer | undefined>>();
  private bytes = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The earlier identical request's answer — waiting for it while it runs — or, when there is
   * none (or it failed), a slot this request fills with its own answer once it has one.
   */
  async claim(req: ReceivedRequest): Promise<Claim> {
    const who = identify(req);
    if (!who) return { settle: () => undefined };
    for (;;) {
      this.expire();
      const kept = this.kept.get(who.id);
      if (kept && kept.until > this.now()) return { earlier: kept.answer };
      const running = this.running.get(who.id);
      if (!running) break;
      const answer = await running;
      if (answer) return { earlier: answer };
    }
    let settle!: (a: Answer | undefined) => void;
    this.running.set(who.id, new Promise((resolve) => (settle = resolve)));
    return {
      settle: (answer) => {
        this.running.delete(who.id);
        if (answer && !UNKEPT.has(answer.operation)) this.keep(who.id, answer, who.signedAt + WINDOW_MS);
        settle(answer);
      },
    };
  }

  private keep(id: string, answer: Answer, until: number): void {
    if (until <= this.now() || answer.body.length > MAX_BYTES / 16) return;
    this.kept.set(id, { answer, until });
    this.bytes += answer.body.length;
    // Oldest first (insertion order) when over the bounds.
    for (const [k, v] of this.kept) {
      if (this.kept.size <= MAX_ANSWERS && this.bytes <= MAX_BYTES) break;
      this.kept.delete(k);
      this.bytes -= v.answer.body.length;
    }
  }

  /** Drops answers from the oldest while they have expired (lookups check their own entry too). */
  private expire(): void {
    const now = this.now();
    for (const [k, v] of this.kept) {
      if (v.until > now) break;
      this.kept.delete(k);
      this.bytes -= v.answer.body.length;
    }
  }
}
