// Threshold ECDSA (DKLs23): key generation with pairwise OT setup, three-round signing, batch
// presigning with one-round signing (presign.ts), and the coordinator's combine. See keygen.ts,
// sign.ts and presign.ts for the protocols, pairing.ts for the pairwise setup (also run by
// ../reshare.ts), rvole.ts / kos.ts / baseot.ts for the two-party multiplication underneath.
export { ecdsaCurveNames, type EcdsaCurveName } from './curves.js';
export {
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  encodeEcdsaKeygenState,
  decodeEcdsaKeygenState,
  type EcdsaKeygenParams,
  type EcdsaKeygenState,
} from './keygen.js';
export {
  checkEcdsaKeyShare,
  checkEcdsaPublicPackage,
  decodeEcdsaKeyShare,
  ecdsaAfterAbort,
  ecdsaDiscardPair,
  ecdsaPublicPackage,
  encodeEcdsaKeyShare,
  type EcdsaKeyShare,
  type EcdsaPublicPackage,
} from './keyshare.js';
export {
  pairingFinish,
  pairingRespond,
  pairingStart,
  type PairingRoundA,
  type PairingRoundB,
  type PairingScope,
  type PairingStateA,
  type PairingStateB,
} from './pairing.js';
export { ecdsaSignStart, ecdsaSignStep, type EcdsaSignRequest } from './sign.js';
export { encodeEcdsaSignState, decodeEcdsaSignState, type EcdsaSignState } from './sign-state.js';
export {
  ecdsaPresignStart,
  ecdsaPresignStep,
  ecdsaPresignedShare,
  ecdsaPresignatureSchema,
  MAX_PRESIGN_BATCH,
  type EcdsaPresignature,
  type EcdsaPresignRequest,
  type EcdsaPresignState,
} from './presign.js';
export { ecdsaCombine, type EcdsaCombineRequest } from './combine.js';
export { ecdsaDerToRaw, ecdsaRawToDer, ecdsaVerify } from './signature.js';
