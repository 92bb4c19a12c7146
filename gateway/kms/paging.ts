// Limit/Marker paging as KMS does it: at most Limit items, and while more remain,
// Truncated: true with a NextMarker to pass back as Marker. A marker is the (opaque, base64url)
// sort key of the last item returned, so a page continues after it even if items were added
// or removed meanwhile.
import { KmsError } from './errors.js';

export interface Page<T> {
  items: T[];
  nextMarker?: string;
}

/** `items` must be sorted by `sortKey` (strictly increasing, plain string comparison). */
export function page<T>(items: readonly T[], sortKey: (t: T) => string, limit: number, marker?: string): Page<T> {
  let start = 0;
  if (marker !== undefined) {
    const after = Buffer.from(marker, 'base64url').toString('utf8');
    if (!after || Buffer.from(after, 'utf8').toString('base64url') !== marker) {
      throw new KmsError('InvalidMarkerException', 'The Marker is not one this API returned; pass the NextMarker of the previous page');
    }
    start = items.findIndex((t) => sortKey(t) > after);
    if (start < 0) start = items.length;
  }
  const slice = items.slice(start, start + limit);
  const more = start + limit < items.length;
  return more ? { items: slice, nextMarker: Buffer.from(sortKey(slice[slice.length - 1]!), 'utf8').toString('base64url') } : { items: slice };
}

/** The response members of a page. */
export function pageFields(p: Page<unknown>): { NextMarker?: string; Truncated: boolean } {
  return p.nextMarker ? { NextMarker: p.nextMarker, Truncated: true } : { Truncated: false };
}
