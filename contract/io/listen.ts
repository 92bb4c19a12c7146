// Starting a listener with an error that says what is wrong: an address in use names itself.
import type { Server } from 'node:net';

export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new Error(`${host}:${port} is in use: another process listens there`)
          : e.code === 'EADDRNOTAVAIL'
            ? new Error(`${host} is not an address of this host`)
            : e,
      ),
    );
    server.listen(port, host, () => resolve());
  });
}
