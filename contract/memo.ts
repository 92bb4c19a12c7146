// A bounded memo for pure, expensive checks of public data that recur: a key's public package
// (curve arithmetic over every verifying share), a key's SPKI (OpenSSL's decoder and encoder),
// an ECDSA signature the coordinator verifies twice.
/**
 * `compute` remembered by `keyOf` of its input (its JSON unless told), so a key used again and
 * again is checked once per process rather than on every use. Failures are not remembered;
 * results are shared, so callers must not mutate them. Bounded, least recently used out first.
 */
export function memoized<A, R>(compute: (input: A) => R, size = 256, keyOf: (input: A) => string | undefined = JSON.stringify): (input: A) => R {
  const cache = new Map<string, R>();
  return (input) => {
    let id: string | undefined;
    try {
      id = keyOf(input);
    } catch {
      return compute(input); // no key (not JSON): let the check say what is wrong with it
    }
    const hit = id === undefined ? undefined : cache.get(id);
    if (hit !== undefined) {
      cache.delete(id!);
      cache.set(id!, hit);
      return hit;
    }
    const result = compute(input);
    if (id !== undefined) {
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
      cache.set(id, result);
    }
    return result;
  };
}
