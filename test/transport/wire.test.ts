// What crosses the gateway ↔ signer link: a real cluster whose gateway reaches every signer
// through a recording TCP proxy. After a key creation, an RSA Encrypt/Decrypt and an ECDSA Sign,
// the bytes captured in both directions hold none of the plaintext, ciphertext, digest or key
// id (in any encoding the JSON bodies would carry), nor HTTP or JSON framing: only TLS records.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { kmsClient } from '../kms/kms-client.js';

/** A TCP proxy on 127.0.0.1 to `target` that keeps every byte it forwards, by direction. */
class RecordingProxy {
  readonly toSigner: Buffer[] = [];
  readonly fromSigner: Buffer[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.once('close', () => this.sockets.delete(s));
      }
      client.on('data', (d: Buffer) => {
        this.toSigner.push(d);
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        this.fromSigner.push(d);
        client.write(d);
      });
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let tc: TestCluster;
const proxies: RecordingProxy[] = [];

beforeAll(async () => {
  tc = await startCluster();
  // Restart with the gateway's signer entries pointing at proxies in front of the real signers.
  await tc.down();
  const file = path.join(tc.dir, 'gateway', 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as { signers: { url: string }[] };
  for (const s of config.signers) {
    const proxy = new RecordingProxy(Number(new URL(s.url).port));
    proxies.push(proxy);
    s.url = `https://127.0.0.1:${await proxy.listen()}`;
  }
  writeFileSync(file, JSON.stringify(config, null, 2));
  await tc.up();
}, 180_000);

afterAll(async () => {
  await tc?.destroy();
  await Promise.all(proxies.map((p) => p.close()));
}, 120_000);

describe('the gateway ↔ signer link', () => {
  it('carries no plaintext, ciphertext, digest, key id or HTTP/JSON framing in clear — only TLS records', async () => {
    const admin = kmsClient(tc, 'admin1');
    const app = kmsClient(tc, 'app');
    const rsa = (await admin.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!.KeyId!;
    const ec = (await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;

    const plaintext = Buffer.from(`wire-test plaintext ${randomBytes(16).toString('hex')}`);
    const ciphertext = Buffer.from((await app.send(new EncryptCommand({ KeyId: rsa, Plaintext: plaintext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).CiphertextBlob!);
    const opened = await app.send(new DecryptCommand({ KeyId: rsa, CiphertextBlob: ciphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(Buffer.from(opened.Plaintext!).equals(plaintext)).toBe(true);

    const digest = createHash('sha256').update(randomBytes(32)).digest();
    const signed = await app.send(new SignCommand({ KeyId: ec, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(signed.Signature?.length).toBeGreaterThan(0);

    const toSigner = Buffer.concat(proxies.flatMap((p) => p.toSigner));
    const fromSigner = Buffer.concat(proxies.flatMap((p) => p.fromSigner));
    // The operations did cross the proxies: every signer took part in the key creations.
    for (const p of proxies) expect(Buffer.concat(p.toSigner).length).toBeGreaterThan(10_000);

    const forms = (b: Buffer) => [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('base64')), Buffer.from(b.toString('base64url'))];
    const secrets: [string, Buffer][] = [
      ...forms(plaintext).map((b): [string, Buffer] => ['the plaintext', b]),
      ...forms(ciphertext.subarray(0, 48)).map((b): [string, Buffer] => ['the ciphertext', b]),
      ...forms(digest).map((b): [string, Buffer] => ['the digest', b]),
      ...forms(Buffer.from(signed.Signature!).subarray(0, 24)).map((b): [string, Buffer] => ['the signature', b]),
      ['the RSA key id', Buffer.from(rsa)],
      ['the ECDSA key id', Buffer.from(ec)],
      ['an HTTP request line', Buffer.from('POST ')],
      ['an HTTP status line', Buffer.from('HTTP/1.1')],
      ['a route path', Buffer.from('/v1/')],
      ['a JSON member', Buffer.from('"keyId"')],
      ['a JSON member', Buffer.from('"session"')],
      ['a signed-request header', Buffer.from('x-mpchsm-')],
    ];
    for (const [direction, bytes] of [
      ['gateway → signers', toSigner],
      ['signers → gateway', fromSigner],
    ] as const) {
      for (const [what, needle] of secrets) expect(bytes.includes(needle), `${what} (${needle.length} bytes) in clear, ${direction}`).toBe(false);
      // TLS 1.3 application data records (type 23, legacy version 3.3).
      expect(bytes.includes(Buffer.from([0x17, 0x03, 0x03])), `TLS application data records, ${direction}`).toBe(true);
    }
  }, 180_000);
});
