// The codes a signer refuses a request with: one vocabulary for the signer, which answers
// {code, message} (signers/node/rpc.ts `RpcError`), and the gateway, which acts on the code
// (gateway/signer-client.ts `SignerRefusedError`), so a code neither side knows cannot be written.

/** AWS's names for a request SigV4 does not authenticate (policy/sigv4.ts), passed on to the client. */
export const SIGV4_REFUSALS = ['IncompleteSignatureException', 'InvalidSignatureException', 'MissingAuthenticationTokenException', 'UnrecognizedClientException'] as const;
export type SigV4Refusal = (typeof SIGV4_REFUSALS)[number];

export const SIGNER_REFUSALS = [
  // the request itself: its channel, its route, its body
  'unauthenticated', 'not-found', 'malformed', 'bad-request', 'internal',
  // policy: the evidence, the key's state and usage, who takes part
  'access-denied', 'invalid-state', 'invalid-usage', 'not-unanimous', 'retired-signer', 'unknown-participant', 'not-a-participant',
  'wrong-participants', 'not-all-signers', 'too-few-signers', 'signer-set-changed', 'wrong-threshold', 'enrolled',
  // keys and sessions this signer holds
  'no-key', 'key-exists', 'wrong-scheme', 'wrong-suite', 'wrong-curve', 'wrong-key-spec', 'wrong-share', 'bad-share',
  'no-session', 'session-exists', 'other-session', 'out-of-order', 'protocol-abort', 'stale-challenge',
  // material made ahead of a request (FROST nonces, ECDSA presignatures): gone (used, expired, a restart) or no room
  'not-preprocessed', 'preprocessed-full',
  // resharing
  'no-pending', 'not-reshareable', 'package-mismatch',
] as const;

export type SignerErrorCode = (typeof SIGNER_REFUSALS)[number] | SigV4Refusal;
