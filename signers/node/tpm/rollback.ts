// Rollback protection for a TPM-sealed store: a TPM NV counter (nt=counter: it only ever grows;
// undefined and defined again it starts above every counter this TPM had since its last clear)
// holds the store's epoch, and the store holds, sealed, the counter's index and the epoch it last
// reached. Every write that must not be undone (PROTECTED_ROUTES) advances both before its answer
// leaves: the store's record first, then the counter, so a crash between them leaves the store
// one ahead, which the next start catches up; a store behind the counter is an older copy put
// back, and the signer refuses to start, naming both epochs.
//
// Not covered: a crash after a change is written and before its record advances leaves that one
// unacknowledged change undoable; a TPM cleared (TPM2_Clear) loses the counter, and the store
// with it (its key was under the cleared owner hierarchy).
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import type { ShareStore } from '../../../contract/io/sealed-store.js';
import { signerRoutes } from '../../../contract/signer-rpc/routes.js';
import type { RpcHandler } from '../rpc.js';
import { readTpmHeader } from './sealer.js';
import { TpmError, withTpm, type Tpm } from './tools.js';

/** Store record: `{ index, epoch }`, the counter's NV index and the value it last reached (decimal). */
export const ROLLBACK_RECORD = 'rollback-epoch';
const recordSchema = z.strictObject({ index: z.number().int().min(0x01000000).max(0x01ffffff), epoch: z.string().regex(/^\d{1,20}$/) });

/** The routes whose effect an older copy of the store would undo: a governance change (a removal, a deletion scheduled …), a refresh or reshare adopted, a share forgotten or destroyed. */
export const PROTECTED_ROUTES: readonly string[] = [signerRoutes.policy.apply.path, signerRoutes.reshare.adopt.path, signerRoutes.keys.forget.path, signerRoutes.keys.destroy.path];

export class RollbackError extends Error {
  override name = 'RollbackError';
}

const NV_ATTRIBUTES = 'nt=counter|ownerread|ownerwrite|no_da';
// Owner NV indices, away from the low ones vendors and other software tend to take.
const INDEX_BASE = 0x01a40000;
const hexIndex = (i: number) => `0x${i.toString(16)}`;

async function readCounter(tpm: Tpm, index: number): Promise<bigint> {
  const out = await tpm.run('nvread', [hexIndex(index), '-C', 'o', '-s', '8']).catch((e: Error) => {
    throw new RollbackError(`the TPM's rollback counter ${hexIndex(index)} cannot be read (undefined, or defined again and never incremented): ${e.message}`);
  });
  if (out.length !== 8) throw new RollbackError(`the TPM's rollback counter ${hexIndex(index)} read ${out.length} bytes, not 8`);
  return out.readBigUInt64BE(0);
}

const increment = (tpm: Tpm, index: number) => tpm.run('nvincrement', [hexIndex(index), '-C', 'o']);

const saveRecord = (store: ShareStore, index: number, epoch: bigint) => store.put(ROLLBACK_RECORD, Buffer.from(JSON.stringify({ index, epoch: epoch.toString() })));

/** At init: defines a new counter on the TPM at `tcti`, starts it and records it in the (new) store. */
export async function defineRollbackCounter(tcti: string, store: ShareStore): Promise<void> {
  await withTpm(tcti, async (tpm) => {
    for (let attempt = 0; ; attempt++) {
      const index = INDEX_BASE + randomInt(0x40000);
      try {
        await tpm.run('nvdefine', [hexIndex(index), '-C', 'o', '-s', '8', '-a', NV_ATTRIBUTES]);
      } catch (e) {
        if (attempt < 4) continue; // taken: another store's counter
        throw e;
      }
      await increment(tpm, index);
      return saveRecord(store, index, await readCounter(tpm, index));
    }
  });
}

/** A store's epoch, kept level with its TPM counter. */
export class RollbackCounter {
  #queue: Promise<void> = Promise.resolve();
  private constructor(
    private readonly tcti: string,
    private readonly store: ShareStore,
    private readonly index: number,
    private value: bigint,
  ) {}

  get epoch(): bigint {
    return this.value;
  }

  /**
   * Opens the counter of the TPM-sealed `store` in `storeDir` and checks the store against it:
   * refuses an older store, catches up one left ahead by a crash. `tcti` overrides the header's.
   */
  static async check(storeDir: string, store: ShareStore, tcti?: string): Promise<RollbackCounter> {
    tcti ??= (await readTpmHeader(storeDir)).tcti;
    const raw = await store.get(ROLLBACK_RECORD);
    if (!raw) throw new RollbackError(`${storeDir} is TPM-sealed but records no rollback counter: it was not made by 'signer init --seal tpm'`);
    const rec = recordSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
    const stored = BigInt(rec.epoch);
    const counter = await withTpm(tcti, async (tpm) => {
      const c = await readCounter(tpm, rec.index);
      if (stored === c + 1n) {
        await increment(tpm, rec.index);
        return readCounter(tpm, rec.index);
      }
      return c;
    });
    if (stored < counter)
      throw new RollbackError(`${storeDir} is at epoch ${stored} but the TPM's rollback counter ${hexIndex(rec.index)} is at epoch ${counter}: this is an older copy of the store put back (it would undo a refresh, a removal, a deletion or a governance change); refusing to start`);
    if (stored !== counter) throw new RollbackError(`${storeDir} is at epoch ${stored}, ahead of the TPM's rollback counter ${hexIndex(rec.index)} at ${counter}: not this TPM's store, or its counter was replaced`);
    return new RollbackCounter(tcti, store, rec.index, counter);
  }

  /** Advances the store's epoch and then the counter; one at a time. */
  advance(): Promise<void> {
    const next = this.#queue.then(async () => {
      const target = this.value + 1n;
      await saveRecord(this.store, this.index, target);
      const reached = await withTpm(this.tcti, async (tpm) => {
        await increment(tpm, this.index);
        return readCounter(tpm, this.index);
      });
      if (reached !== target) throw new TpmError(`the TPM's rollback counter ${hexIndex(this.index)} reached ${reached}, not ${target}: another process advances it`);
      this.value = target;
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** `routes` with each protected one advancing the epoch once it succeeded, before its answer leaves. */
  guard(routes: Record<string, RpcHandler>): Record<string, RpcHandler> {
    return Object.fromEntries(
      Object.entries(routes).map(([path, h]) => [
        path,
        PROTECTED_ROUTES.includes(path)
          ? async (body, meta) => {
              const answer = await h(body, meta);
              await this.advance();
              return answer;
            }
          : h,
      ]),
    );
  }
}
