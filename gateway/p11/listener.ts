// The PKCS#11 module's framed RPC listener (being built: see pkcs11-shim/).
import net from 'node:net';
import type { GatewayDeps } from '../server.js';

export async function startPkcs11Listener(deps: GatewayDeps): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.config.pkcs11Port, deps.config.host, resolve);
  });
  return server;
}
