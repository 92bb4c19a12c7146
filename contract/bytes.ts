// Bytes and identifiers every floor speaks: hex in and out, party identifiers, injected randomness.
import { z } from 'zod';

/** A party's identifier: its Shamir x-coordinate, 1..n (0 is never an identifier). */
export type PartyId = number;
export const partyIdSchema = z.number().int().min(1).max(0xffff);

/** Injected randomness: returns `n` fresh random bytes. Tests pass a seeded generator. */
export type Rng = (n: number) => Uint8Array;

export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/**
 * Whether `s` is lower-case hex of whole bytes. Node's decoder stops at the first non-hex
 * character, so a full-length decode means all hex; a few times faster than a regular expression
 * on the 100 KB messages of threshold ECDSA.
 */
export const isLowerHex = (s: string): boolean => s.length % 2 === 0 && Buffer.from(s, 'hex').length * 2 === s.length && !/[A-F]/.test(s);
export const hexSchema = z.string().refine(isLowerHex, 'lower-case hex');

/** A TPM object's bytes (a public area, a wrapped private area, a quote, a credential) as they travel in files, records and calls: lower-case hex. */
export const tpmBlobSchema = z.string().regex(/^(?:[0-9a-f]{2})+$/).max(8192);
