// CKA_LABEL of a key is its KMS alias (without `alias/`). The aliases belong to the KMS
// facade (gateway/kms/state.ts); this reads its state file, again whenever it changed, and
// never writes it.
import { statSync } from 'node:fs';
import type { KeyStore } from '../keys.js';
import { KmsState } from '../kms/state.js';

export class AliasView {
  private cached: { stamp: string; byKey: Map<string, string[]> } | undefined;

  constructor(
    private readonly file: string,
    private readonly keys: KeyStore,
  ) {}

  /** Alias names (without `alias/`) by key id, each list sorted. */
  byKey(): Map<string, string[]> {
    let stamp = 'absent';
    try {
      const st = statSync(this.file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      // no aliases yet
    }
    if (this.cached?.stamp !== stamp) {
      const byKey = new Map<string, string[]>();
      if (stamp !== 'absent') {
        for (const a of new KmsState(this.file, this.keys).aliases()) {
          const list = byKey.get(a.keyId) ?? [];
          list.push(a.name.replace(/^alias\//, ''));
          byKey.set(a.keyId, list);
        }
      }
      this.cached = { stamp, byKey };
    }
    return this.cached.byKey;
  }
}
