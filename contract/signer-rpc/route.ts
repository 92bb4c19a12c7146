// What a route of the gateway↔signer channel is: a path, the request body the signer parses
// (a ZodError there answers 400 malformed), and the answer the gateway reads, both sides
// importing the one entry (routes.ts lists them all). Here too is what many routes share: a
// protocol round's envelopes to relay, the next round's request, a key generation's start and
// last answer, the audit-log head.
// Members only signers/protocols can parse (a signing package, a key's public parameters) are
// opaque in the contract: the signer narrows them with the protocol's schema.
import { z } from 'zod';
import { keyIdSchema, relayedSchema, sessionIdSchema } from './relayed.js';

export interface Route<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  readonly path: string;
  readonly request: Req;
  /** Members the answer may carry beyond these are dropped when the gateway reads it. */
  readonly response: Res;
}

/** A route; its path keeps its literal type, so a table keyed by paths names each one. */
export const route = <P extends string, Req extends z.ZodType, Res extends z.ZodType>(path: P, request: Req, response: Res) => ({ path, request, response }) as const;

/** What the gateway sends on a route. */
export type RouteBody<R extends Route> = z.input<R['request']>;
/** What the gateway reads from a route's answer. */
export type RouteAnswer<R extends Route> = z.output<R['response']>;

/**
 * Entry `seq` of a party's audit log hashes to `hash`: the gateway sends its own head with every
 * request (`callerHead`), and a signer answers with the head of the entry recording a release.
 */
export const logHeadSchema = z.strictObject({ seq: z.number().int().min(0), hash: z.string().regex(/^[0-9a-f]{64}$/) });
/** In the answer of a request that may release a partial or a key share. */
export const released = { audit: logHeadSchema.optional() };

/** A protocol round's answer: this signer's envelopes, which the gateway relays. */
export const roundAnswer = z.object({ outbound: z.array(relayedSchema) });
/** The next round of a session: the envelopes addressed to this signer, or broadcast. */
export const stepRequest = z.strictObject({ session: sessionIdSchema, inbound: z.array(relayedSchema).max(1024) });

/**
 * A key generation's start, with its scheme's members (`suite`, `curve`): every admitted signer
 * at the cluster's threshold, and `creation`, authority.ts `Creation`, which the signer's guard parses.
 */
export const keygenStart = <S extends z.ZodRawShape>(scheme: S) =>
  z.strictObject({
    session: sessionIdSchema,
    keyId: keyIdSchema,
    ...scheme,
    participants: z.array(z.number().int()),
    threshold: z.number().int(),
    creation: z.unknown().optional(),
  });
/** A key generation's step: the last round's answer carries the key's public package (the protocol's). */
export const keygenAnswer = roundAnswer.extend({ publicPackage: z.unknown().optional(), ...released });
