// Signers restored from a backup (`mpchsm signer restore`, an approved RestoreSigner): the lost
// signer's log went with its host, and the restored signer starts a new one under its new
// identity. Gateway entries recorded before the restoration that name the signer — the heads of
// its entries, the partials it gave — describe the lost log: they are not checked against the new
// one, and the verifier says so (information). A restoration counts only where another signer's
// own log records applying it (`policy.RestoreSigner`, the same proposal, naming that member):
// the gateway's word alone never excuses a signer's log that no longer holds what it should —
// that stays a truncation or a rewrite.
import type { EventEntry } from './entry.js';

interface Log {
  party: string;
  lines: readonly { entry: { kind: string } }[];
}

const eventsOf = (log: Log): EventEntry[] => log.lines.flatMap((l) => (l.entry.kind === 'event' ? [l.entry as EventEntry] : []));
const field = (e: EventEntry, name: string): unknown => (e.detail as Record<string, unknown> | undefined)?.[name];

/** For each restored signer, the gateway's entry of its last corroborated restoration: entries before it describe the lost log. */
export function restorationPoints(logs: readonly Log[]): Map<string, { seq: number; proposal: string; by: string }> {
  const gateway = logs.find((l) => l.party === 'gateway');
  const out = new Map<string, { seq: number; proposal: string; by: string }>();
  if (!gateway) return out;
  const applied = logs.filter((l) => l !== gateway).flatMap((l) => eventsOf(l).filter((e) => e.op === 'policy.RestoreSigner' && e.outcome === 'ok').map((e) => ({ by: l.party, e })));
  for (const g of eventsOf(gateway)) {
    if (g.op !== 'RestoreSigner' || g.outcome !== 'ok') continue;
    const proposal = field(g, 'proposal');
    const witness = applied.find((a) => field(a.e, 'proposal') === proposal && a.by !== field(a.e, 'member'));
    const member = witness && field(witness.e, 'member');
    if (witness && typeof member === 'string' && typeof proposal === 'string') out.set(member, { seq: g.seq, proposal, by: witness.by });
  }
  return out;
}
