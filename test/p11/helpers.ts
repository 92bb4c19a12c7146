// Shared by the PKCS#11 tests: builds the module and its C test programs, runs the harness.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { CKA, CKO } from '../../contract/pkcs11/ck.js';
import { uuidBytes } from '../../gateway/p11/objects.js';
import { repoRoot } from '../helpers/cluster.js';

export const shimDir = path.join(repoRoot, 'pkcs11-shim');
export const modulePath = path.join(shimDir, 'build', 'libmpchsm-pkcs11.so');
export const harnessPath = path.join(shimDir, 'build', 'harness');
export const shaTestPath = path.join(shimDir, 'build', 'sha-test');
export const hmacTestPath = path.join(shimDir, 'build', 'hmac-test');
export const codesPath = path.join(shimDir, 'build', 'codes');

/** Builds the module and the test programs (a no-op when they are up to date). */
export function buildShim(): void {
  execFileSync('make', ['-s', '-C', shimDir, 'build/libmpchsm-pkcs11.so', 'build/harness', 'build/sha-test', 'build/hmac-test', 'build/codes'], { stdio: 'pipe' });
}

export interface Step {
  rv: number;
  detail: string;
}

/** Runs one scenario of the harness (or another C test program printing the same steps); returns its steps by name (a repeated step keeps every answer). */
export function harness(args: string[], env: Record<string, string>, timeoutMs = 120_000, program = harnessPath): { steps: Map<string, Step[]>; status: number | null; stderr: string } {
  const r = spawnSync(program, [modulePath, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: timeoutMs });
  const steps = new Map<string, Step[]>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) 0x([0-9a-f]+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const list = steps.get(m[1]!) ?? [];
    list.push({ rv: parseInt(m[2]!, 16), detail: m[3] ?? '' });
    steps.set(m[1]!, list);
  }
  return { steps, status: r.status, stderr: r.stderr };
}

/** The one answer of a step (fails the test if the step is missing). */
export function only(steps: Map<string, Step[]>, name: string): Step {
  const s = steps.get(name);
  if (!s || s.length !== 1) throw new Error(`harness step ${name}: ${s ? s.length : 0} answers`);
  return s[0]!;
}

export { CKR } from '../../contract/pkcs11/ck.js';

/** The CKR value a pkcs11js/graphene call failed with (undefined: it did not fail). */
export function ckrOf(f: () => unknown): number | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return codeOf(e);
  }
}

export async function ckrOfAsync(f: () => Promise<unknown>): Promise<number | undefined> {
  try {
    await f();
    return undefined;
  } catch (e) {
    return codeOf(e);
  }
}

/** pkcs11js reports a CKR as `code`, or (some calls) only in the message, "CKR_NAME:value". */
function codeOf(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'number') return code;
  const m = /^CKR_\w+:(\d+)/.exec((e as Error).message ?? '');
  if (m) return Number(m[1]);
  throw e;
}

/** Loads and initialises the module for the cluster whose config file is `conf`: the module, its raw library, the token's slot. */
export function loadModule(conf: string): { mod: graphene.Module; lib: pkcs11.PKCS11; slot: graphene.Slot } {
  process.env.MPCHSM_PKCS11_CONF = conf;
  const mod = graphene.Module.load(modulePath, 'mpchsm');
  mod.initialize();
  return { mod, lib: mod.lib, slot: mod.getSlots(0) };
}

/** Stops what a module suite started: the loaded module (if still initialised), then the cluster. */
export async function stopModuleAndCluster(mod: { finalize(): void } | undefined, cluster: { destroy(): Promise<void> } | undefined): Promise<void> {
  try {
    mod?.finalize();
  } catch {
    // already finalised
  }
  await cluster?.destroy();
}

/**
 * Signs through the module as an application principal (CKU_USER with its PIN, the module
 * configured by its env file): each message with the private key whose CKA_ID is that key id's.
 */
export function signThroughModule(p: { MPCHSM_PKCS11_CONF: string; MPCHSM_PKCS11_PIN: string }, uses: readonly { keyId: string; mechanism: number; message: Uint8Array }[]): Buffer[] {
  buildShim();
  process.env.MPCHSM_PKCS11_CONF = p.MPCHSM_PKCS11_CONF;
  const mod = graphene.Module.load(modulePath, 'mpchsm');
  mod.initialize();
  try {
    const s = mod.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION);
    s.login(p.MPCHSM_PKCS11_PIN, graphene.UserType.USER);
    const signatures = uses.map(({ keyId, mechanism, message }) => {
      mod.lib.C_FindObjectsInit(s.handle, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.ID, value: uuidBytes(keyId) }]);
      const [key] = mod.lib.C_FindObjects(s.handle, 2);
      mod.lib.C_FindObjectsFinal(s.handle);
      mod.lib.C_SignInit(s.handle, { mechanism }, key!);
      return mod.lib.C_Sign(s.handle, Buffer.from(message), Buffer.alloc(512));
    });
    s.logout();
    return signatures;
  } finally {
    mod.finalize();
  }
}
