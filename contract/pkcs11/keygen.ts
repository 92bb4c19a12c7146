// What a C_GenerateKeyPair asks for, read from its mechanism and templates: the key spec and
// usage. Pure, so the gateway and each signer (which checks an administrator's key generation
// itself: policy/admin-evidence.ts) read a request alike.
import type { KeySpec, KeyUsage } from '../keys/specs.js';
import { CKA, CKM, CKR, P11Error } from './ck.js';
import { keySpecOfEcParams } from './ec-params.js';
import type { Abi } from './wire.js';

export const RSA_BITS: Readonly<Record<string, KeySpec>> = { 2048: 'RSA_2048', 3072: 'RSA_3072', 4096: 'RSA_4096' };

/** One attribute from the private template, else the public one; they must agree. */
export function pick(pub: Map<number, Buffer>, priv: Map<number, Buffer>, type: number): Buffer | undefined {
  const a = priv.get(type);
  const b = pub.get(type);
  if (a && b && !a.equals(b)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, `attribute 0x${type.toString(16)} differs between the public and private templates`);
  return a ?? b;
}

export const isTrue = (b: Buffer | undefined) => b !== undefined && b.length === 1 && b[0] !== 0;
export const isFalse = (b: Buffer | undefined) => b !== undefined && b.length === 1 && b[0] === 0;

export function keySpecFor(mech: number, pub: Map<number, Buffer>, priv: Map<number, Buffer>, abi: Abi): KeySpec {
  if (mech === CKM.RSA_PKCS_KEY_PAIR_GEN) {
    const bitsAttr = pick(pub, priv, CKA.MODULUS_BITS);
    if (!bitsAttr) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_MODULUS_BITS (2048, 3072 or 4096) is required');
    const bits = abi.readUlong(bitsAttr);
    const spec = bits === undefined ? undefined : RSA_BITS[bits.toString()];
    if (!spec) throw new P11Error(CKR.KEY_SIZE_RANGE, `RSA keys are 2048, 3072 or 4096 bits, not ${bits ?? 'a malformed CKA_MODULUS_BITS'}`);
    const e = pick(pub, priv, CKA.PUBLIC_EXPONENT);
    if (e && BigInt('0x' + (e.toString('hex') || '0')) !== 65537n) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'the public exponent is always 65537');
    return spec;
  }
  if (mech === CKM.EC_KEY_PAIR_GEN || mech === CKM.EC_EDWARDS_KEY_PAIR_GEN) {
    const params = pick(pub, priv, CKA.EC_PARAMS);
    if (!params) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_EC_PARAMS (the curve) is required');
    const spec = keySpecOfEcParams(params);
    if (!spec) throw new P11Error(CKR.DOMAIN_PARAMS_INVALID, 'unknown curve; mpchsm knows Ed25519, P-256, P-384, P-521 and secp256k1');
    if (mech === CKM.EC_EDWARDS_KEY_PAIR_GEN && spec !== 'ECC_NIST_EDWARDS25519') throw new P11Error(CKR.DOMAIN_PARAMS_INVALID, 'CKM_EC_EDWARDS_KEY_PAIR_GEN makes Edwards keys only');
    return spec;
  }
  throw new P11Error(CKR.MECHANISM_INVALID, `mechanism 0x${mech.toString(16)} generates no key pair`);
}

/** One usage per key, as in KMS: signing unless only decryption is asked for. */
export function usageOf(keySpec: KeySpec, wantsSign: boolean, wantsDecrypt: boolean): KeyUsage {
  if (!keySpec.startsWith('RSA_') && wantsDecrypt && !wantsSign) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'EC and Edwards keys sign; they do not decrypt');
  return keySpec.startsWith('RSA_') && wantsDecrypt && !wantsSign ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY';
}

/** The key spec and usage a C_GenerateKeyPair with mechanism `mech` and these templates makes. */
export function keyPairRequested(mech: number, pub: Map<number, Buffer>, priv: Map<number, Buffer>, abi: Abi): { keySpec: KeySpec; keyUsage: KeyUsage } {
  const keySpec = keySpecFor(mech, pub, priv, abi);
  const keyUsage = usageOf(keySpec, isTrue(priv.get(CKA.SIGN)) || isTrue(pub.get(CKA.VERIFY)), isTrue(priv.get(CKA.DECRYPT)) || isTrue(pub.get(CKA.ENCRYPT)));
  return { keySpec, keyUsage };
}
