// The approval console's pages, rendered on the server as plain HTML: what each pending request
// asks, in words and values a person checks (a signature: the key, its aliases and description,
// the digest, the requesting principal; a governance change: the document before and after).
// Every value is escaped; the one script is script.ts, served from this origin.
import type { GovernanceDocument, Proposal } from '../../policy/index.js';
import type { SignRequest } from '../proposals.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
const when = (ms: number) => esc(new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC');

export function page(title: string, body: string, who?: string): string {
  const nav = who
    ? `<nav><a href="/">Pending requests</a> · <a href="/enrol">Enrol a security key</a> · signed in as <b id="who">${esc(who)}</b> · <button id="signout">Sign out</button></nav>`
    : `<nav><a href="/">Sign in</a> · <a href="/enrol">Enrol a security key</a></nav>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · mpchsm</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;padding:0 1em;color:#222}
nav{border-bottom:1px solid #ccc;padding-bottom:.5em;margin-bottom:1em}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;width:14em}code,pre{font:13px ui-monospace,monospace;word-break:break-all;white-space:pre-wrap}
.diff{display:grid;grid-template-columns:1fr 1fr;gap:1em}.diff pre{background:#f8f8f8;padding:.5em;border:1px solid #ddd}
button{font:inherit;padding:.3em 1em}#status{margin-top:1em;font-weight:bold}
</style></head>
<body><h1>mpchsm approval console</h1>${nav}
<h2>${esc(title)}</h2>
${body}
<p id="status" role="status"></p>
<script src="/console.js"></script>
</body></html>`;
}

export function signInPage(): string {
  return page(
    'Sign in',
    `<p>Sign in with a security key or passkey enrolled for you in the cluster's governance.</p>
<p><button id="signin">Sign in with your security key</button></p>`,
  );
}

export function enrolPage(rpId: string, origin: string, who?: string): string {
  return page(
    'Enrol a security key',
    `<p>Makes a credential on your security key for this console (RP id <code>${esc(rpId)}</code>, origin <code>${esc(origin)}</code>).
It approves nothing until the administrators' quorum enrols it in the governance: save the JSON below as a file and run
<code>mpchsm governance propose --file FILE --as NAME</code>, then the others run <code>mpchsm approve</code>.
Compare the credential id with the one <code>mpchsm approve</code> shows before approving.</p>
<p><label>Administrator name <input id="name" value="${esc(who ?? '')}"></label> <button id="enrol">Create a credential</button></p>
<pre id="credential"></pre>`,
    who,
  );
}

/** A waiting signature with what a person needs beside it: the key's names and who approved so far. */
export interface SignRequestView extends SignRequest {
  aliases: string[];
  description: string;
  approvers: string[];
  required: number;
}

export interface ProposalView {
  proposal: Proposal;
  approvers: string[];
  required: number;
  /** open, executed, failed or refused, and why (who refused it, what failed). */
  status?: string;
  outcome?: string | undefined;
}

export function homePage(who: string, signs: readonly SignRequestView[], proposals: readonly ProposalView[]): string {
  const signRows = signs.map(
    (s) => `<tr><td><a href="/sign/${esc(s.id)}">${esc(s.aliases[0] ?? s.keyId)}</a></td><td>${esc(s.fileName ?? '—')}</td><td>${esc(s.algorithm)}</td><td><code>${esc(s.digest.slice(0, 16))}…</code></td><td>${esc(s.principal)}</td><td>${s.approvers.length} of ${s.required}</td><td>${when(s.at)}</td></tr>`,
  );
  const proposalRows = proposals.map(
    (p) => `<tr><td><a href="/proposal/${esc(p.proposal.id)}">${esc(p.proposal.id)}</a></td><td>${esc(p.proposal.operation)}</td><td>${esc(p.proposal.proposer)}</td><td>${p.approvers.length} of ${p.required}</td><td>${when(p.proposal.expiresAt)}</td></tr>`,
  );
  return page(
    'Pending requests',
    `<h3>Signatures waiting for approval</h3>
${signs.length ? `<table id="signs"><tr><th>Key</th><th>File</th><th>Algorithm</th><th>Digest</th><th>Requested by</th><th>Approvals</th><th>Asked</th></tr>${signRows.join('')}</table>` : '<p id="signs">None.</p>'}
<h3>Proposals</h3>
${proposals.length ? `<table id="proposals"><tr><th>Proposal</th><th>Operation</th><th>Proposer</th><th>Approvals</th><th>Open until</th></tr>${proposalRows.join('')}</table>` : '<p id="proposals">None.</p>'}`,
    who,
  );
}

export function signRequestPage(who: string, s: SignRequestView): string {
  return page(
    'Approve a signature',
    `<table id="request">
<tr><th>Key</th><td><code>${esc(s.keyId)}</code>${s.aliases.length ? ` (${s.aliases.map(esc).join(', ')})` : ''}</td></tr>
<tr><th>Key description</th><td>${esc(s.description || '—')}</td></tr>
<tr><th>Algorithm</th><td>${esc(s.algorithm)}</td></tr>
<tr><th>Digest of what is signed</th><td><code id="digest">${esc(s.digest)}</code></td></tr>
<tr><th>Requested by</th><td>${esc(s.principal)}</td></tr>
${s.fileName ? `<tr><th>File (as the client names it)</th><td id="file">${esc(s.fileName)}</td></tr>` : ''}
${s.certificateSubject ? `<tr><th>Certificate subject (as the client names it)</th><td id="subject">${esc(s.certificateSubject)}</td></tr>` : ''}
<tr><th>Asked</th><td>${when(s.at)}</td></tr>
<tr><th>Approvals</th><td>${s.approvers.length} of ${s.required}${s.approvers.length ? ` (${s.approvers.map(esc).join(', ')})` : ''}</td></tr>
</table>
<p>Compare the digest with the file you expect to be signed (for example <code>sha256sum FILE</code>, or the digest your signing tool prints).
Approving asks your security key to sign this exact statement; each signer checks that signature itself.</p>
<p><button id="approve" data-request="${esc(s.id)}">Approve with your security key</button> <button id="refuse" data-request="${esc(s.id)}">Refuse</button></p>`,
    who,
  );
}

const pretty = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

export function proposalPage(who: string, p: ProposalView, current: GovernanceDocument): string {
  const pr = p.proposal;
  const change =
    pr.operation === 'mpchsm:UpdateGovernance'
      ? `<div class="diff" id="change"><div><h4>Before: governance v${current.version}</h4>${pretty(current)}</div><div><h4>After</h4>${pretty((pr.parameters as { Document?: unknown }).Document)}</div></div>`
      : `<div id="change"><h4>Parameters</h4>${pretty(pr.parameters)}</div>`;
  return page(
    `Proposal ${pr.id}`,
    `<table><tr><th>Operation</th><td>${esc(pr.operation)}</td></tr><tr><th>Proposed by</th><td>${esc(pr.proposer)}</td></tr>
<tr><th>Approvals</th><td>${p.approvers.length} of ${p.required}${p.approvers.length ? ` (${p.approvers.map(esc).join(', ')})` : ''}</td></tr>
<tr><th>Open until</th><td>${when(pr.expiresAt)}</td></tr>
<tr><th>Status</th><td id="state">${esc(p.status ?? 'open')}${p.outcome ? ` (${esc(p.outcome)})` : ''}</td></tr></table>
${change}
${
  (p.status ?? 'open') === 'open'
    ? `<p>Approving asks your security key to sign this exact proposal (as <code>mpchsm approve ${esc(pr.id)} --as ${esc(who)}</code> does with your approval key); each signer checks that signature itself.
The approval that completes the quorum executes the proposal. Refusing closes it for good (<code>mpchsm refuse</code>): it can then be neither approved nor executed.</p>
<p><button id="approve-proposal" data-proposal="${esc(pr.id)}">Approve with your security key</button> <button id="refuse-proposal" data-proposal="${esc(pr.id)}">Refuse with your security key</button></p>`
    : ''
}`,
    who,
  );
}
