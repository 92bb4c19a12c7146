// The host facts a party reports about itself (report.ts): which machine, which account runs
// the process, which account owns its data directory. Shared by the signer daemon and the
// gateway, which report alike, and by `mpchsm doctor`, which names accounts the same way.
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';

/** uid → user name from /etc/passwd; empty where it cannot be read (names are a courtesy, uids are compared). */
export function userNames(): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]!);
    }
  } catch {
    // No /etc/passwd: uids only.
  }
  return m;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** SHA-256 of /etc/machine-id, or of the hostname on a host without one. */
function hostId(): string {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim();
    if (id) return sha256(`machine-id:${id}`);
  } catch {
    // Containers and some systems have none.
  }
  return sha256(`hostname:${os.hostname()}`);
}

export interface HostFacts {
  hostId: string;
  hostname: string;
  operator: { uid: number; user: string };
  admin: { uid: number; user: string };
}

/** This process's host and accounts; `dataDir` is the party's own directory. */
export function hostFacts(dataDir: string): HostFacts {
  const names = userNames();
  const account = (uid: number) => ({ uid, user: (names.get(uid) ?? `uid ${uid}`).slice(0, 64) });
  const uid = process.getuid?.() ?? -1;
  return {
    hostId: hostId(),
    hostname: os.hostname().slice(0, 253),
    operator: account(Math.max(uid, 0)),
    admin: account(statSync(realpathSync(dataDir)).uid),
  };
}
