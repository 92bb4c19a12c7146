// A signer (and the gateway) starts only on the genesis every founding administrator signed, and only on the one
// it was founded on: real `signer init` / `signer start --genesis` processes (and the daemon
// itself, run without the CLI's own check) refuse a genesis missing a signature or edited after
// signing, with an exit status and a message naming what is wrong. `signer start` also says
// clearly when its port is taken and when the passphrase is not the store's.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entry } from '../../cli/layout.js';
import { isAlive, stopPid } from '../../cli/processes.js';
import type { GenesisFile } from '../../policy/index.js';
import { freePort, mpchsm, mpchsmJson, runProcess, type RunResult } from './helpers.js';

const LONG = 240_000;
const SIGNERS = ['signer1', 'signer2', 'signer3'];
const secret = (name: string) => `passphrase of ${name}\n`;

describe('a signer and its genesis', () => {
  let base: string;
  const dir = (name: string) => path.join(base, name);
  const file = (name: string) => path.join(base, name);
  const port: Record<string, number> = {};
  const pids = new Set<number>();
  const readGenesis = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as GenesisFile;
  /** A copy of `from` edited by `edit`, as genesis file `name`. */
  const edited = (from: string, name: string, edit: (g: GenesisFile) => void): string => {
    const g = readGenesis(from);
    edit(g);
    writeFileSync(file(name), JSON.stringify(g, null, 2));
    return file(name);
  };
  const start = (name: string, genesis: string, input = secret(name)) => mpchsm(['signer', 'start', '--dir', dir(name), '--genesis', genesis, '--detach'], { input });
  const startGateway = (genesis: string) => mpchsm(['gateway', 'start', '--dir', dir('gateway'), '--genesis', genesis, '--detach'], { input: secret('gateway') });
  /** The signer daemon itself on `genesis`, without the CLI's check in front of it. */
  const daemon = (name: string, genesis: string): Promise<RunResult> => runProcess(process.execPath, [entry.signer, 'run', '--dir', dir(name), '--genesis', genesis], { input: secret(name) });
  const refused = (r: RunResult, message: string | RegExp) => {
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.code).not.toBeNull(); // it exited on its own, not killed by the run's time limit
    if (typeof message === 'string') expect(r.stderr).toContain(message);
    else expect(r.stderr).toMatch(message);
  };

  /** Two founding administrators sign the genesis made from `signers`' files; the file after each signature. */
  async function foundingGenesis(name: string, signers: string[]): Promise<{ partial: string; full: string }> {
    await mpchsmJson(['genesis', 'create', '--threshold', '2', '--gateway', path.join(dir('gateway'), 'gateway.json'), ...signers.flatMap((s) => ['--signer', path.join(dir(s), `${s}.signer.json`)]), '--admin', path.join(dir('admin1'), 'admin1.admin.json'), '--admin', path.join(dir('admin2'), 'admin2.admin.json'), '--out', file(name)]);
    await mpchsmJson(['genesis', 'sign', file(name), '--as', 'admin1', '--dir', dir('admin1')]);
    const partial = file(`${name}.admin1-only.json`);
    copyFileSync(file(name), partial);
    await mpchsmJson(['genesis', 'sign', file(name), '--as', 'admin2', '--dir', dir('admin2')]);
    return { partial, full: file(name) };
  }
  let genesis: { partial: string; full: string };

  beforeAll(async () => {
    base = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-genesis-'));
    for (const a of ['admin1', 'admin2']) await mpchsmJson(['admin', 'init', '--dir', dir(a), '--name', a]);
    // signer2's impostor: another store and identity with signer2's name, made by someone else.
    for (const [d, name] of [...SIGNERS.map((s) => [s, s]), ['impostor', 'signer2']] as const) {
      port[d] = await freePort('127.0.0.1');
      await mpchsmJson(['signer', 'init', '--dir', dir(d), '--name', name, '--listen', `127.0.0.1:${port[d]}`], { input: secret(d) });
    }
    await mpchsmJson(['gateway', 'init', '--dir', dir('gateway'), '--listen', `127.0.0.1:${await freePort('127.0.0.1')}`], { input: secret('gateway') });
    genesis = await foundingGenesis('genesis.json', SIGNERS);
  }, LONG);

  afterAll(async () => {
    for (const s of SIGNERS) await mpchsm(['signer', 'stop', '--dir', dir(s)]).catch(() => undefined);
    for (const pid of pids) if (isAlive(pid)) await stopPid(pid);
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it("refuses a genesis missing one founding administrator's signature, naming them", async () => {
    refused(await start('signer1', genesis.partial), 'lacks the signature of founding administrator admin2');
    refused(await daemon('signer1', genesis.partial), 'lacks the signature of founding administrator admin2');
    // The gateway, too.
    refused(await startGateway(genesis.partial), 'lacks the signature of founding administrator admin2');
    refused(await runProcess(process.execPath, [entry.gateway, 'run', '--dir', dir('gateway'), '--genesis', genesis.partial], { input: secret('gateway') }), 'lacks the signature of founding administrator admin2');
  }, LONG);

  const edits: [string, (g: GenesisFile, impostor: GenesisFile['Genesis']['Signers'][number]['Identity']) => void][] = [
    ["a signer's endpoint moved", (g) => (g.Genesis.Signers[1]!.Endpoint = 'https://127.0.0.1:1')],
    ["signer2's identity swapped for an impostor's of the same name", (g, impostor) => (g.Genesis.Signers[1]!.Identity = impostor)],
    [
      'a founding administrator removed, with their signature',
      (g) => {
        g.Genesis.Administrators = g.Genesis.Administrators.filter((a) => a.Name !== 'admin2');
        g.Genesis.Governance.administrators = g.Genesis.Governance.administrators.filter((a) => a.name !== 'admin2');
        for (const op of Object.keys(g.Genesis.Governance.quorum)) g.Genesis.Governance.quorum[op] = 1;
        g.Signatures = g.Signatures.filter((s) => s.Admin !== 'admin2');
      },
    ],
  ];
  for (const [what, edit] of edits)
    it(`refuses a genesis edited after signing: ${what}`, async () => {
      const impostor = JSON.parse(readFileSync(path.join(dir('impostor'), 'signer2.signer.json'), 'utf8')).Identity;
      const f = edited(genesis.full, `edited-${what.replace(/\W+/g, '-')}.json`, (g) => edit(g, impostor));
      const message = /admin[12]'s signature does not verify: the genesis was changed after it was signed/;
      refused(await start('signer1', f), message);
      refused(await daemon('signer1', f), message);
      refused(await startGateway(f), message);
    }, LONG);

  it('starts on the signed genesis, then refuses a different genesis on its next start', async () => {
    const r = await mpchsmJson(['signer', 'start', '--dir', dir('signer1'), '--genesis', genesis.full, '--detach'], { input: secret('signer1') });
    pids.add(r.Pid as number);
    expect(r.Url).toBe(`https://127.0.0.1:${port.signer1}`);
    expect((await mpchsmJson(['signer', 'stop', '--dir', dir('signer1')])).Stopped).toBe(true);
    // Another cluster founded by the same parties: signed by both, listing signer1, but not its own.
    const other = await foundingGenesis('other.json', SIGNERS);
    const second = await start('signer1', other.full);
    refused(second, `${other.full} is not the genesis this signer was founded on`);
    // And it still starts on its own.
    const again = await mpchsmJson(['signer', 'start', '--dir', dir('signer1'), '--genesis', genesis.full, '--detach'], { input: secret('signer1') });
    pids.add(again.Pid as number);
    expect((await mpchsmJson(['signer', 'stop', '--dir', dir('signer1')])).Stopped).toBe(true);
  }, LONG);

  it('refuses a genesis that does not list it', async () => {
    const { full } = await foundingGenesis('without-signer3.json', ['signer1', 'signer2']);
    refused(await start('signer3', full), /not among its signers/);
  }, LONG);

  it('says clearly when its port is taken (and not what an earlier start failed on)', async () => {
    // An earlier failed start leaves its reason in the log; this start's report must not repeat it.
    refused(await start('signer2', genesis.full, 'not the passphrase\n'), 'does not unlock this store');
    const holder = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => holder.listen(port.signer2, '127.0.0.1', r));
    try {
      const r = await start('signer2', genesis.full);
      refused(r, `127.0.0.1:${port.signer2} is in use`);
      expect(r.stderr).not.toContain('passphrase');
    } finally {
      await new Promise((r) => holder.close(r));
    }
  }, LONG);

  it('the gateway, too, names its address when its port is taken; founded, it refuses another genesis', async () => {
    const kms = new URL(readGenesis(genesis.full).Genesis.Gateway.Kms);
    const holder = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => holder.listen(Number(kms.port), kms.hostname, r));
    try {
      refused(await startGateway(genesis.full), `${kms.host} is in use: another process listens there`);
    } finally {
      await new Promise((r) => holder.close(r));
    }
    // Founded by that start on the genesis, it refuses the other cluster's (made in an earlier test).
    refused(await startGateway(file('other.json')), `${file('other.json')} is not the genesis this gateway was founded on`);
  }, LONG);

  it('says clearly when the passphrase is not the one its store was sealed with', async () => {
    const r = await start('signer3', genesis.full, 'not the passphrase\n');
    refused(r, 'the operator secret (passphrase) given does not unlock this store: it was sealed with another');
  }, LONG);
});
