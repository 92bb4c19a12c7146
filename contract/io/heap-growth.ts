// A daemon's live heap is small (gateway ~40 MB, signer ~50 MB) and its garbage short-lived, but
// V8 lets the old generation grow to up to 4× what survived the last full collection before the
// next, so under load a party's resident set swung past 200 MB (docs/operations.md, "Memory").
// Each daemon holds that growth to 1.5× at start; `node --heap-growing-percent=N` cannot be
// passed through NODE_OPTIONS, so it is set here, where every deployment runs it.
import { setFlagsFromString } from 'node:v8';

const HEAP_GROWING_PERCENT = 50;

export function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
