// RSA key-ceremony dealer: a short-lived process that reads one JSON request on stdin,
//   { "mode": "generate", "bits": 2048|3072|4096, "participants": [...], "threshold": t }
//   { "mode": "import", "pkcs8Pem": "-----BEGIN PRIVATE KEY-----…", "participants": [...], "threshold": t }
// deals the key (signers/protocols/rsa/deal.ts), writes the result JSON on stdout and exits:
// 0 with { publicKey, params, safePrimes, shares: [{ id, s, vi }] }, or 1 with { error: { code, message } }.
// Each entry of `shares` is everything one signer needs beyond the public params, so it can be
// encrypted to that signer's identity key here before anything leaves the process.
//
// Wiping, honestly: every Buffer/Uint8Array this process holds with key material (stdin chunks,
// random bytes, exponent and output buffers, the serialized result) is zeroed once used. The
// private key also lives in JS strings (the PEM, the JSON) and BigInts (p, q, d, coefficients,
// shares), which are immutable and cannot be overwritten; we drop every reference and exit, and
// the operating system reclaims the process's memory. That exit is the real wipe, which is why
// the dealer is its own process and never part of a long-running one.

import { randomFillSync } from 'node:crypto';
import { ProtocolError } from '../protocols/common.js';
import { type Rng } from '../../contract/bytes.js';
import { bigIntToMinBytes } from '../protocols/rsa/arith.js';
import { dealRsa, encodeDeal, rsaDealRequestSchema } from '../protocols/rsa/deal.js';
import { z } from 'zod';
import { dealerIdentity, recipientSchema, sealDealtShare } from './dealt-share.js';

const rng: Rng = (n) => randomFillSync(new Uint8Array(n));

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const all = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  return all;
}

function run(input: Buffer): unknown {
  let json: unknown;
  try {
    json = JSON.parse(input.toString('utf8'));
  } catch {
    throw new ProtocolError('malformed', 'stdin is not JSON');
  }
  // With `keyId` and `recipients`, each share leaves this process only encrypted to its signer.
  const delivery = z.object({ keyId: z.string().uuid(), recipients: z.array(recipientSchema) }).safeParse(json);
  const req = rsaDealRequestSchema.safeParse(json);
  if (!req.success) throw new ProtocolError('malformed', `request: ${req.error.issues[0]?.path.join('.')} ${req.error.issues[0]?.message}`);
  const { participants, threshold } = req.data;
  const deal = dealRsa(
    req.data.mode === 'generate' ? { bits: req.data.bits, participants, threshold } : { pkcs8Pem: req.data.pkcs8Pem, participants, threshold },
    rng,
  );
  const dealt = encodeDeal(deal);
  if (!delivery.success) return dealt;
  const { keyId, recipients } = delivery.data;
  const dealer = dealerIdentity();
  const shares = deal.shares.map(({ id, s }) => {
    const to = recipients.find((r) => r.id === id);
    if (!to) throw new ProtocolError('bad-parameters', `no recipient identity for party ${id}`);
    const bytes = bigIntToMinBytes(s);
    try {
      return { id, envelope: sealDealtShare(keyId, { id, s: bytes }, dealer, to.identity) };
    } finally {
      bytes.fill(0);
    }
  });
  dealer.signSecretKey.fill(0);
  dealer.kexSecretKey.fill(0);
  return { ...dealt, shares, dealer: dealer.public };
}

function finish(result: unknown, code: number): void {
  const out = Buffer.from(JSON.stringify(result) + '\n', 'utf8');
  process.stdout.write(out, () => {
    out.fill(0);
    process.exit(code);
  });
}

const input = await readStdin();
try {
  finish(run(input), 0);
} catch (err) {
  // Never echo the input or internal state: only our own error codes and messages.
  const error = err instanceof ProtocolError ? { code: err.code, message: err.message } : { code: 'internal', message: 'dealer failed' };
  finish({ error }, 1);
} finally {
  input.fill(0);
}
