// Cross-checking the gateway's log against the signers' logs, by request (correlation) id.
//
// The signers' chains are the authority. A compromised gateway owns its own log and can append
// anything to it, so no gateway entry ever explains a signer's act; it can only agree with it.
// - Every partial or key share a signer produced must have a gateway entry for its request that
//   names this signer, and every gateway entry for that request must report what the signer
//   recorded: the same operation, key, principal and digest of the message or ciphertext. One
//   that says otherwise is a misreport, even beside another entry that tells the truth.
// - Likewise every key, alias, principal or governance change a signer applied (`change-N`)
//   must match the gateway's record of forwarding change N: operation, key and principal.
// - Every signature, plaintext or key the gateway released must be backed, at each signer it
//   names, by that signer's own successful entry for the same request (a partial, or a key
//   share for key generation and resharing); where the gateway recorded the signer's entry
//   (seq, hash), that entry must be about this request. A change the gateway recorded
//   forwarding must be in some signer's log.
// - The gateway writes an intent (entry.ts) under each request id before any signer can release
//   under it, and the request's entry after. An intent with no later entry for its request is a
//   request the gateway never finished: it stopped (a crash, a kill) between the two. That is
//   reported as information (`interrupted`), and a signer's release under it is explained by the
//   intent when it matches it (operation, key, principal, digest) and every other signer's
//   release under that request; one that does not is an error, as is a release with neither an
//   intent nor an entry.

import type { EventEntry, IntentEntry, LogEntry } from './entry.js';
import type { Finding, KnownHead } from './verify.js';

/** A party's entries, e.g. a `ParsedLog` (verify.ts). */
export interface PartyLog {
  party: string;
  lines: readonly { entry: LogEntry }[];
}

const events = (log: PartyLog): EventEntry[] => log.lines.flatMap((l) => (l.entry.kind === 'event' ? [l.entry] : []));

// Signers restored from a backup (`mpchsm signer restore`, an approved RestoreSigner): the lost
// signer's log went with its host, and the restored signer starts a new one under its new
// identity. Gateway entries recorded before the restoration that name the signer — the heads of
// its entries, the partials it gave — describe the lost log: they are not checked against the new
// one, and the verifier says so (information). A restoration counts only where another signer's
// own log records applying it (`policy.RestoreSigner`, the same proposal, naming that member):
// the gateway's word alone never excuses a signer's log that no longer holds what it should —
// that stays a truncation or a rewrite.
const detailOf = (e: EventEntry, name: string): unknown => (e.detail as Record<string, unknown> | undefined)?.[name];

/** For each restored signer, the gateway's entry of its last corroborated restoration: entries before it describe the lost log. */
function restorationPoints(logs: readonly PartyLog[]): Map<string, { seq: number; proposal: string; by: string }> {
  const gateway = logs.find((l) => l.party === 'gateway');
  const out = new Map<string, { seq: number; proposal: string; by: string }>();
  if (!gateway) return out;
  const applied = logs.filter((l) => l !== gateway).flatMap((l) => events(l).filter((e) => e.op === 'policy.RestoreSigner' && e.outcome === 'ok').map((e) => ({ by: l.party, e })));
  for (const g of events(gateway)) {
    if (g.op !== 'RestoreSigner' || g.outcome !== 'ok') continue;
    const proposal = detailOf(g, 'proposal');
    const witness = applied.find((a) => detailOf(a.e, 'proposal') === proposal && a.by !== detailOf(a.e, 'member'));
    const member = witness && detailOf(witness.e, 'member');
    if (witness && typeof member === 'string' && typeof proposal === 'string') out.set(member, { seq: g.seq, proposal, by: witness.by });
  }
  return out;
}

function byRequest<E extends { request: string }>(es: E[]): Map<string, E[]> {
  const m = new Map<string, E[]>();
  for (const e of es) m.set(e.request, [...(m.get(e.request) ?? []), e]);
  return m;
}

const RELEASES = new Set(['signature', 'plaintext', 'key']);
const CONTRIBUTES = new Set(['partial', 'key']);

/** The client operation a gateway entry claims, by its op (KMS, PKCS#11, the cluster's own), else by what it released. */
const CLAIMS: Readonly<Record<string, string>> = {
  Sign: 'Sign',
  'pkcs11.sign': 'Sign',
  Decrypt: 'Decrypt',
  'pkcs11.decrypt': 'Decrypt',
  GenerateRandom: 'GenerateRandom',
  Encrypt: 'Encrypt',
  ReEncrypt: 'ReEncrypt',
  GenerateDataKey: 'GenerateDataKey',
  GenerateDataKeyWithoutPlaintext: 'GenerateDataKeyWithoutPlaintext',
  GenerateDataKeyPair: 'GenerateDataKeyPair',
  GenerateDataKeyPairWithoutPlaintext: 'GenerateDataKeyPairWithoutPlaintext',
  CreateKey: 'CreateKey',
  'pkcs11.generate_key_pair': 'CreateKey',
  'pkcs11.create_object': 'CreateKey',
  ReshareKey: 'ReshareKey',
  RefreshKeyShares: 'ReshareKey',
  RotateKeyOnDemand: 'RotateKey',
};
const BY_OUTPUT: Readonly<Record<string, string>> = { signature: 'Sign', plaintext: 'Decrypt' };
const claimedOperation = (g: EventEntry | IntentEntry): string | undefined => g.operation ?? CLAIMS[g.op] ?? ('output' in g ? BY_OUTPUT[g.output] : undefined);
/** A change a signer applied, recorded with its operation (older entries lack it). */
const isChange = (e: EventEntry) => e.op.startsWith('policy.') && e.operation !== undefined;
/** The gateway's record of forwarding a numbered change (governance.ts). */
const isForwarded = (g: EventEntry) => g.op.startsWith('change.');

const VERBS: Readonly<Record<string, string>> = { Sign: 'signed with', Decrypt: 'decrypted with', CreateKey: 'created', ReshareKey: 'reshared' };
const short = (h: string) => `${h.slice(0, 16)}…`;

/** What a signer entry says it did, in words. */
function signerAccount(party: string, e: EventEntry): string {
  if (isChange(e)) {
    // A change outside any quorum names whom the gateway said asked: the signer could not check it.
    const word = e.detail?.onGatewayWord === true ? " (on the gateway's word)" : '';
    return `${party} applied ${e.operation}${e.keyId ? ` to key ${e.keyId}` : ''} for principal ${e.principal?.name ?? '(none)'}${word} at ${e.startedAt} (its entry ${e.seq})`;
  }
  const verb = e.operation ? (VERBS[e.operation] ?? `did ${e.operation} on`) : `produced a ${e.output} for`;
  const who = e.principal?.name ? ` for principal ${e.principal.name}` : '';
  const what = e.operation && e.digest ? ` (${e.operation === 'Decrypt' ? 'ciphertext' : 'message'} SHA-256 ${short(e.digest)})` : '';
  return `${party} ${verb} key ${e.keyId ?? '(none)'}${who}${what} at ${e.startedAt} (its entry ${e.seq})`;
}

/** What a gateway entry claims, in words. */
function gatewayClaim(g: EventEntry): string {
  const who = g.principal?.name ? ` for principal ${g.principal.name}` : ' for no principal';
  const what = g.digest ? ` (SHA-256 ${short(g.digest)})` : '';
  return `${claimedOperation(g) ?? g.op} of key ${g.keyId ?? '(none)'}${who}${what}, ${g.outcome} (entry ${g.seq})`;
}

/**
 * Where gateway entry `g` fails to report signer entry `e` of the same request: a value it
 * states otherwise, or (`strict`, for an entry that names the signer) one it leaves out.
 * Entries written before signers recorded the client's operation are compared on key and
 * principal only.
 */
function differences(e: EventEntry, g: EventEntry | IntentEntry, strict: boolean): string[] {
  const differ = (mine: string | undefined, theirs: string | undefined) => mine !== undefined && mine !== theirs && (strict || theirs !== undefined);
  const out: string[] = [];
  if (e.operation !== undefined && claimedOperation(g) !== e.operation) out.push('operation');
  // ReEncrypt's source evaluations name the source key, which its gateway entry names beside the destination.
  if (differ(e.keyId, g.keyId) && !(claimedOperation(g) === 'ReEncrypt' && e.keyId === g.detail?.sourceKeyId)) out.push('key');
  // A creation's principal at a signer is the proposal's proposer, whom the gateway's entry for the approving request does not name.
  if ((e.output === 'partial' || isChange(e)) && differ(e.principal?.name, g.principal?.name)) out.push('principal');
  if (e.operation !== undefined && differ(e.digest, g.digest)) out.push(e.operation === 'Decrypt' ? 'ciphertext' : 'digest');
  return out;
}

/** What an intent says the gateway was about to do, in words. */
function intentClaim(i: IntentEntry): string {
  const who = i.principal?.name ? ` for principal ${i.principal.name}` : '';
  const what = i.digest ? ` (SHA-256 ${short(i.digest)})` : '';
  return `${claimedOperation(i) ?? i.op} of key ${i.keyId ?? '(not yet known)'}${who}${what} (intent, entry ${i.seq})`;
}

/** The gateway's intents that no later entry of its own closes, by request: requests it never finished. */
function openIntents(gateway: PartyLog, gwByRequest: Map<string, EventEntry[]>): Map<string, IntentEntry> {
  const open = new Map<string, IntentEntry>();
  for (const l of gateway.lines) {
    const i = l.entry;
    if (i.kind === 'intent' && !(gwByRequest.get(i.request) ?? []).some((g) => g.seq > i.seq)) open.set(i.request, i);
  }
  return open;
}

type Release = { party: string; e: EventEntry };

/**
 * A request the gateway never finished: information when every signer's release under it
 * matches what the intent states and the other signers' releases;
 * otherwise an error for each release that does not.
 */
function interrupted(gateway: string, intent: IntentEntry, released: readonly Release[]): Finding[] {
  const out: Finding[] = [];
  const ref = released[0];
  for (const { party, e } of released) {
    // What the gateway did not know yet (a key being created) it could not state: only values it stated are compared.
    const wrong = differences(e, intent, false);
    const others = ref && ref.e !== e ? differences(e, ref.e, true) : [];
    const list = (ws: string[]) => (ws.length === 1 ? `${ws[0]} differs` : `${ws.slice(0, -1).join(', ')} and ${ws.at(-1)} differ`);
    if (wrong.length > 0)
      out.push({ party: gateway, seq: intent.seq, severity: 'error', code: 'misreported', message: `request ${intent.request}: ${signerAccount(party, e)}; the gateway's intent says ${intentClaim(intent)} — the ${list(wrong)}` });
    else if (others.length > 0)
      out.push({ party, seq: e.seq, severity: 'error', code: 'signers-disagree', message: `request ${intent.request}: ${signerAccount(party, e)}, but ${signerAccount(ref!.party, ref!.e)} — the ${list(others)}` });
  }
  if (out.length > 0) return out;
  const by = released.length ? `; ${released.map((r) => `${r.party} (entry ${r.e.seq})`).join(', ')} released under it, consistently with it and each other` : '; no signer released under it';
  return [
    {
      party: gateway,
      seq: intent.seq,
      severity: 'info',
      code: 'interrupted',
      message: `request ${intent.request}: the gateway recorded its intent, ${intentClaim(intent)}, but no outcome: it stopped mid-request (a crash or kill)${by}`,
    },
  ];
}

export function crossCheck(gateway: PartyLog, signers: readonly PartyLog[]): Finding[] {
  const findings: Finding[] = [];
  const gwEvents = events(gateway);
  const gwByRequest = byRequest(gwEvents);
  const open = openIntents(gateway, gwByRequest);
  const underOpen = new Map<string, Release[]>();
  const signerLogs = new Map(signers.map((s) => [s.party, { log: s, byRequest: byRequest(events(s)) }]));
  const restored = restorationPoints([gateway, ...signers]);
  for (const [name, r] of restored) {
    const before = gwEvents.filter((g) => g.seq < r.seq && g.signers?.some((s) => s.name === name)).length;
    findings.push({ party: name, severity: 'info', code: 'restored', message: `${name} was restored from a backup (proposal ${r.proposal}, gateway entry ${r.seq}, applied by ${r.by}): its log before then was lost with its host, and the ${before} gateway entr${before === 1 ? 'y' : 'ies'} before it naming ${name} ${before === 1 ? 'is' : 'are'} not checked against its new log` });
  }

  // Attempts that failed before one succeeded (a resharing finished later) share a request id;
  // two entries that both succeeded do not belong together.
  for (const [request, all] of gwByRequest) {
    const es = all.filter((e) => e.outcome === 'ok');
    if (es.length > 1)
      findings.push({ party: gateway.party, seq: es[1]!.seq, severity: 'warning', code: 'duplicate-request', message: `request ${request} has ${es.length} successful gateway entries (seq ${es.map((e) => e.seq).join(', ')})` });
  }

  for (const g of gwEvents) {
    if (g.outcome === 'ok' && isForwarded(g) && !signers.some((s) => signerLogs.get(s.party)!.byRequest.has(g.request)))
      findings.push({ party: gateway.party, seq: g.seq, severity: 'error', code: 'missing-signer-entry', message: `request ${g.request}: the gateway recorded forwarding ${claimedOperation(g)}${g.keyId ? ` of key ${g.keyId}` : ''}, but no signer's log has an entry for it` });
    if (g.outcome !== 'ok' || !RELEASES.has(g.output)) continue;
    const at = (code: Finding['code'], message: string) => findings.push({ party: gateway.party, seq: g.seq, severity: 'error', code, message: `request ${g.request}: ${message}` });
    const expected = g.output === 'key' ? 'key' : 'partial';
    if (!g.signers?.length) at('missing-signer-entry', `the gateway released a ${g.output} naming no signer`);
    for (const s of g.signers ?? []) {
      if (g.seq < (restored.get(s.name)?.seq ?? -1)) continue; // its lost log's
      const signer = signerLogs.get(s.name);
      if (!signer) {
        at('missing-log', `the gateway released a ${g.output} naming signer ${s.name}, whose log is not available`);
        continue;
      }
      const mine = signer.byRequest.get(g.request) ?? [];
      if (mine.length === 0) at('missing-signer-entry', `the gateway released a ${g.output} naming signer ${s.name}, but ${s.name}'s log has no entry for this request`);
      else if (!mine.some((e) => e.outcome === 'ok' && e.output === expected)) {
        const last = mine.at(-1)!;
        at('signer-refused', `the gateway released a ${g.output} naming signer ${s.name}, but ${s.name} recorded no ${expected} for it (seq ${last.seq}: ${last.outcome}${last.reason ? `, ${last.reason}` : ''})`);
      }
      if (s.entry) {
        const ref = signer.log.lines.find((l) => l.entry.seq === s.entry!.seq)?.entry;
        if (ref && (ref.kind !== 'event' || ref.request !== g.request))
          at('head-mismatch', `the gateway recorded ${s.name}'s entry ${s.entry.seq} for this request, but that entry is ${ref.kind === 'event' ? `about request ${ref.request}` : `a ${ref.kind} entry`}`);
      }
    }
  }

  const misreports = new Set<string>();
  for (const { log, byRequest: mine } of signerLogs.values()) {
    for (const es of mine.values())
      for (const e of es) {
        if (e.outcome !== 'ok' || !(CONTRIBUTES.has(e.output) || isChange(e))) continue;
        const gs = gwByRequest.get(e.request) ?? [];
        const at = (code: Finding['code'], message: string) => findings.push({ party: log.party, seq: e.seq, severity: 'error', code, message: `request ${e.request}: ${message}` });
        const names = (g: EventEntry) => g.signers?.some((s) => s.name === log.party) ?? false;
        const did = isChange(e) ? `applied ${e.operation}` : `produced a ${e.output}`;
        // A release under a request the gateway intended but never finished: judged with its intent below.
        if (gs.length === 0 && !isChange(e) && open.has(e.request)) {
          underOpen.set(e.request, [...(underOpen.get(e.request) ?? []), { party: log.party, e }]);
          continue;
        }
        if (gs.length === 0) at('missing-gateway-entry', `${log.party} ${did}, but the gateway's log has no entry for this request${isChange(e) ? `: ${signerAccount(log.party, e)}` : ''}`);
        // A change goes to whoever is active when it is pushed, which a signer admitted since may be.
        else if (!isChange(e) && !gs.some(names))
          at('signer-not-listed', `${log.party} ${did}, but the gateway's entry (seq ${gs[0]!.seq}) does not name ${log.party} among the signers: ${signerAccount(log.party, e)}`);
        for (const g of gs) {
          const wrong = differences(e, g, isChange(e) || names(g));
          // A signer's repeated entry (an RSA partial given again, an adopt repeated) is one misreport.
          const id = `${g.seq}/${log.party}`;
          if (wrong.length > 0 && !misreports.has(id)) {
            misreports.add(id);
            findings.push({
              party: gateway.party,
              seq: g.seq,
              severity: 'error',
              code: 'misreported',
              message: `request ${e.request}: ${signerAccount(log.party, e)}; the gateway's log says ${gatewayClaim(g)} — the ${wrong.length === 1 ? `${wrong[0]} differs` : `${wrong.slice(0, -1).join(', ')} and ${wrong.at(-1)} differ`}`,
            });
          }
        }
      }
  }
  for (const [request, intent] of open) findings.push(...interrupted(gateway.party, intent, underOpen.get(request) ?? []));
  return findings.sort((a, b) => (a.party === b.party ? (a.seq ?? 0) - (b.seq ?? 0) : a.party < b.party ? -1 : 1));
}

/**
 * Heads of each party's log recorded in other parties' entries (the gateway's `signers[].entry`
 * and anyone's `heads`), keyed by the party whose log they describe: pass them to `verifyLog`
 * as `knownHeads` to detect truncation and rewriting.
 */
export function collectKnownHeads(logs: readonly PartyLog[]): Map<string, KnownHead[]> {
  const out = new Map<string, KnownHead[]>();
  const put = (party: string, h: KnownHead) => out.set(party, [...(out.get(party) ?? []), h]);
  const restored = restorationPoints(logs);
  for (const log of logs)
    for (const e of events(log)) {
      const source = `${log.party} (entry ${e.seq})`;
      // Heads the gateway recorded of a restored signer's lost log describe no log now held.
      const lost = (name: string) => log.party === 'gateway' && e.seq < (restored.get(name)?.seq ?? -1);
      for (const s of e.signers ?? []) if (s.entry && !lost(s.name)) put(s.name, { ...s.entry, source });
      for (const h of e.heads ?? []) put(h.party, { seq: h.seq, hash: h.hash, source });
    }
  return out;
}
