// The few libsodium functions suites.ts takes from sodium-native (which ships no types): each
// writes its result into the first buffer and throws where libsodium returns an error.
declare module 'sodium-native' {
  export function crypto_scalarmult_ed25519_base_noclamp(q: Uint8Array, n: Uint8Array): void;
  export function crypto_scalarmult_ed25519_noclamp(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  export function crypto_core_ed25519_add(r: Uint8Array, p: Uint8Array, q: Uint8Array): void;
  export function crypto_core_ed25519_is_valid_point(p: Uint8Array): boolean;
  export function crypto_core_ed25519_scalar_add(z: Uint8Array, x: Uint8Array, y: Uint8Array): void;
  /** Reduces a 64-byte little-endian integer modulo the group order into 32 bytes. */
  export function crypto_core_ed25519_scalar_reduce(r: Uint8Array, s: Uint8Array): void;
  export function sodium_memzero(b: Uint8Array): void;
}
