// Where the approval console listens and the origin its WebAuthn credentials are scoped to
// (gateway/console/server.ts consoleAddress): HTTPS when the gateway has a certificate.
import { describe, expect, it } from 'vitest';
import { consoleAddress } from '../../gateway/console/server.js';

describe('the console address', () => {
  it('is off unless configured; a loopback console is localhost to the browser, HTTPS with the gateway certificate', () => {
    expect(consoleAddress({})).toBeUndefined();
    expect(consoleAddress({ consoleListen: '127.0.0.1:4700' })).toEqual({ host: '127.0.0.1', port: 4700, origin: 'http://localhost:4700', rpId: 'localhost' });
    expect(consoleAddress({ consoleListen: '0.0.0.0:443', consoleOrigin: 'https://hsm.example.com', tls: { cert: 'c', key: 'k' } })).toEqual({ host: '0.0.0.0', port: 443, origin: 'https://hsm.example.com', rpId: 'hsm.example.com' });
    expect(consoleAddress({ consoleListen: 'hsm.example.com:4700', tls: { cert: 'c', key: 'k' } })?.origin).toBe('https://hsm.example.com:4700');
  });
});
