// The threshold-ECDSA routes (DKLs23, signers/protocols/ecdsa/): key generation, two rounds after
// the start; signing, two rounds after the start, the last carrying each signer's share; and
// presigning, a batch made in two rounds after the start, each presignature then signing in one
// round (`sign.presigned`). Presigning releases nothing: no secret leaves, no audit entry.
import { z } from 'zod';
import { keygenAnswer, keygenStart, released, roundAnswer, route, stepRequest } from './route.js';
import { keyIdSchema, sessionIdSchema } from './relayed.js';

/** How long a signer holds a presignature for its use (the gateway drops its ids somewhat sooner). */
export const PRESIGNATURE_TTL_MS = 10 * 60_000;

/** `<presigning session>-<index>`. */
const presignatureIdSchema = z.string().regex(/^[a-z0-9-]{8,140}$/);

const signersSchema = z.array(z.number().int()).min(1);
const digestSchema = z.string().regex(/^(?:[0-9a-f]{2}){1,64}$/);

export const ecdsa = {
  keygen: {
    /** `curve` is narrowed by the signer to the protocol's curve names. */
    start: route('/v1/ecdsa/keygen/start', keygenStart({ curve: z.string() }), roundAnswer),
    step: route('/v1/ecdsa/keygen/step', stepRequest, keygenAnswer),
  },
  sign: {
    /** `digest`: what is signed, hex; `use`: contract/signer-rpc/authority.ts `Use`, which the signer's guard parses. */
    start: route(
      '/v1/ecdsa/sign/start',
      z.strictObject({
        session: sessionIdSchema,
        keyId: keyIdSchema,
        signers: signersSchema,
        digest: digestSchema,
        lowS: z.boolean().optional(),
        use: z.unknown().optional(),
      }),
      roundAnswer,
    ),
    step: route('/v1/ecdsa/sign/step', stepRequest, roundAnswer.extend(released)),
    /**
     * One round with a presignature made for this key and exactly these signers: the signer takes
     * it out of its table before anything else (gone whatever follows), then authorises `use` as
     * `start` does; the answer is its round-3 broadcast.
     */
    presigned: route(
      '/v1/ecdsa/sign/presigned',
      z.strictObject({
        session: sessionIdSchema,
        keyId: keyIdSchema,
        presignature: presignatureIdSchema,
        signers: signersSchema,
        digest: digestSchema,
        use: z.unknown().optional(),
      }),
      roundAnswer.extend(released),
    ),
  },
  presign: {
    /** `count`: how many presignatures the batch makes (the protocol's MAX_PRESIGN_BATCH at most). */
    start: route('/v1/ecdsa/presign/start', z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, signers: signersSchema, count: z.number().int().min(1) }), roundAnswer),
    /** The last step names the batch's presignatures, each by id with its public R. */
    step: route('/v1/ecdsa/presign/step', stepRequest, roundAnswer.extend({ presignatures: z.array(z.strictObject({ id: presignatureIdSchema, R: z.string() })).optional() })),
  },
};
