// The identifiers and the relayed-message shape every protocol route between gateway and signers
// carries: the gateway routes by `from`/`to` in clear and cannot read or forge the envelope.
import { z } from 'zod';
import { envelopeSchema } from '../identity/envelope.js';

/** A protocol message as relayed by the gateway: routing in clear, content in an envelope. */
export const relayedSchema = z.strictObject({ from: z.number().int(), to: z.union([z.number().int(), z.literal('all')]), envelope: envelopeSchema });
export type Relayed = z.infer<typeof relayedSchema>;

export const sessionIdSchema = z.string().regex(/^[a-z0-9-]{8,128}$/);
export const keyIdSchema = z.string().uuid();
/** A lower-case UUID as the gateway makes them: a request's id, a key's id in a change. */
export const uuidSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
