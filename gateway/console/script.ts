// The console's one script (served as /console.js): the WebAuthn calls a page makes, and the
// JSON posts that carry their results. The browser builds nothing else; what it sends is checked
// by the gateway (sign-in) and, for approvals, by every signer.
export const CONSOLE_SCRIPT = String.raw`'use strict';
const b64u = {
  enc: (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
  dec: (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0)),
};
const status = (t) => { document.getElementById('status').textContent = t; };
async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(out.message || res.statusText);
  return out;
}
const assertionOf = (c) => ({
  credentialId: c.id,
  authenticatorData: b64u.enc(c.response.authenticatorData),
  clientDataJSON: b64u.enc(c.response.clientDataJSON),
  signature: b64u.enc(c.response.signature),
});
async function assert(challenge, rpId, credentials) {
  const c = await navigator.credentials.get({ publicKey: {
    challenge: b64u.dec(challenge), rpId, userVerification: 'required', timeout: 120000,
    allowCredentials: credentials.map((id) => ({ type: 'public-key', id: b64u.dec(id) })),
  } });
  return assertionOf(c);
}
async function run(f) {
  try { await f(); } catch (e) { status('Failed: ' + e.message); }
}
const on = (id, f) => { const el = document.getElementById(id); if (el) el.addEventListener('click', () => run(() => f(el))); };

on('signin', async () => {
  const c = await post('/api/challenge');
  const assertion = await assert(c.challenge, c.rpId, c.credentials);
  const s = await post('/api/session', { id: c.id, assertion });
  status('Signed in as ' + s.name);
  location.href = '/';
});
on('signout', async () => { await post('/api/signout'); location.href = '/'; });
on('enrol', async () => {
  const name = document.getElementById('name').value;
  const o = await post('/api/enrol-options', { name });
  const c = await navigator.credentials.create({ publicKey: {
    rp: { id: o.rpId, name: 'mpchsm' }, user: { id: b64u.dec(o.userId), name, displayName: name },
    challenge: b64u.dec(o.challenge), pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -8 }],
    authenticatorSelection: { userVerification: 'required', residentKey: 'preferred' }, attestation: 'none', timeout: 120000,
  } });
  const credential = { id: c.id, publicKey: b64u.enc(c.response.getPublicKey()), alg: c.response.getPublicKeyAlgorithm(), rpId: o.rpId, origin: location.origin };
  document.getElementById('credential').textContent = JSON.stringify({ webauthn: { [name]: [credential] } }, null, 2);
  status('Credential created: save the JSON above and propose it (mpchsm governance propose --file FILE --as ' + name + ')');
});
on('approve', async (el) => {
  const id = el.dataset.request;
  const s = await post('/api/sign/' + id + '/statement');
  const webauthn = await assert(s.challenge, s.rpId, s.credentials);
  const r = await post('/api/sign/' + id + '/approve', { statement: s.statement, webauthn });
  status('Approved: ' + r.approvals + ' of ' + r.required + ' approvals');
});
// A proposal: the key signs the digest mpchsm approve (or refuse) signs, and the gateway runs MpcHsm.Approve (or Refuse).
const onProposal = (verb) => async (el) => {
  const id = el.dataset.proposal;
  const s = await post('/api/proposal/' + id + '/' + verb + '-statement');
  const webauthn = await assert(s.challenge, s.rpId, s.credentials);
  const r = await post('/api/proposal/' + id + '/' + verb, { webauthn });
  status(r.status + ': ' + r.approvals.length + ' of ' + r.required + ' approvals');
};
on('approve-proposal', onProposal('approve'));
on('refuse-proposal', onProposal('refuse'));
on('refuse', async (el) => {
  await post('/api/sign/' + el.dataset.request + '/refuse');
  status('Refused');
});
`;
