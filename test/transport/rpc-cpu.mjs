// A measure, not a test: CPU and wall time per gateway → signer call of a cheap route
// (keys.inventory), made by this process as the gateway (its SignerClient, built in dist/)
// against one real signer process of a fresh cluster. Prints, for N calls one at a time and in
// 16 and 64 concurrent lanes, the client's CPU (process.cpuUsage) and the signer's (/proc/PID/stat) per call.
// Usage: npm run build && node test/transport/rpc-cpu.mjs [N]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { SignerClient } = await dist('gateway/signer-client.js');
const { loadGatewayConfig } = await dist('gateway/config.js');
const { ShareStore } = await dist('contract/io/sealed-store.js');
const { loadIdentity } = await dist('contract/identity/identity.js');
const { signerRoutes } = await dist('contract/signer-rpc/routes.js');

const N = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-test-rpccpu-'));
const port = 20000 + Math.floor(Math.random() * 10000);
const mpchsm = (...args) => execFileSync(process.execPath, [path.join(root, 'bin', 'mpchsm.js'), ...args], { cwd: root, stdio: 'pipe' });
const ticks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in ms at 100 Hz
};

try {
  mpchsm('up', '--dir', dir, '--signers', '3', '--threshold', '2', '--port', String(port), '--detach');
  const store = await ShareStore.open(path.join(dir, 'gateway', 'store'), readFileSync(path.join(dir, 'operators', 'gateway.secret'), 'utf8'));
  const identity = await loadIdentity(store);
  store.close();
  const entry = loadGatewayConfig(path.join(dir, 'gateway')).signers[0];
  const signerPid = JSON.parse(readFileSync(path.join(dir, 'cluster.json'), 'utf8')).signers.find((s) => s.name === entry.name).pid;
  const client = new SignerClient(entry, identity, 10_000);
  const call = () => client.call(signerRoutes.keys.inventory, {});
  for (let i = 0; i < 300; i++) await call(); // warm up (JIT, the connection)

  const measure = async (label, run) => {
    const cpu0 = process.cpuUsage();
    const s0 = ticks(signerPid);
    const t0 = performance.now();
    await run();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const s1 = ticks(signerPid);
    const per = (ms) => ((ms * 1000) / N).toFixed(0).padStart(5);
    console.log(`${label.padEnd(16)} wall ${per(wall)} µs/call   gateway CPU ${per((cpu.user + cpu.system) / 1000)} µs/call   signer CPU ${per(s1 - s0)} µs/call`);
  };
  await measure(`${N} sequential`, async () => {
    for (let i = 0; i < N; i++) await call();
  });
  for (const lanes of [16, 64]) {
    await measure(`${N} in ${lanes} lanes`, () => Promise.all(Array.from({ length: lanes }, async () => { for (let i = 0; i < N / lanes; i++) await call(); })));
  }
  client.close();
} finally {
  try { mpchsm('down', '--dir', dir); } catch { /* already down */ }
  rmSync(dir, { recursive: true, force: true });
}
