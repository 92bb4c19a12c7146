// Raw connections to the gateway's PKCS#11 listener: what a client other than the module (or
// an attacker) can send, and when the gateway hangs up.
import net from 'node:net';
import { derivePinKeys } from '../../policy/evidence.js';
import { CKU } from '../../contract/pkcs11/ck.js';
import { decodeValue, encodeValue, FrameReader, OP, type Value } from '../../contract/pkcs11/wire.js';

/** A request as the module frames it: version 1, the op, 8-byte little-endian CK_ULONG, the credential. */
export const request = (op: number, credential: string, ...args: Value[]): Value => [1, op, 1, Buffer.from(credential), ...args];

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      // A reset by the gateway shows as 'close'; the tests look at that.
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves when the socket closes. */
export function closed(s: net.Socket): Promise<void> {
  return s.destroyed && s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

/** Sends one request and reads its answer; rejects if the gateway hangs up instead. */
export const call = (s: net.Socket, req: Value): Promise<Value[]> => callBody(s, encodeValue(req));

/** Sends `body` (any bytes, well-formed or not) as one frame and reads the answer; rejects if the gateway hangs up instead. */
export function callBody(s: net.Socket, body: Buffer): Promise<Value[]> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const onData = (c: Buffer) => {
      const [body] = reader.push(c);
      if (!body) return;
      done();
      resolve(decodeValue(body) as Value[]);
    };
    const onClose = () => {
      done();
      reject(new Error('the gateway closed the connection'));
    };
    const done = () => {
      s.off('data', onData);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.once('close', onClose);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    s.write(Buffer.concat([length, body]));
  });
}

/** C_Login as the module does it (PIN KDF, then the PIN's login key); the session credential. */
export async function rawLogin(s: net.Socket, pin: string): Promise<string> {
  const [, salt, iterations] = await call(s, request(OP.PIN_KDF, ''));
  const { loginKey } = derivePinKeys(pin, { salt: (salt as Buffer).toString('hex'), iterations: iterations as number });
  const [rv, credential] = await call(s, request(OP.LOGIN, '', CKU.USER, Buffer.from(loginKey)));
  if (rv !== 0) throw new Error(`login: CKR 0x${(rv as number).toString(16)}`);
  return (credential as Buffer).toString('utf8');
}
