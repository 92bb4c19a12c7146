/* The mechanism table: every mechanism the module offers as one row (key type, flags, key
 * sizes, the hash the module applies, the parameter check and encoding), so no function needs
 * a `case CKM_` ladder of its own.
 *
 * Parameters are checked against what the threshold schemes sign (PSS with MGF1 over the same
 * hash and a salt as long as the hash; OAEP with SHA-1 or SHA-256 and no label; Ed25519 without
 * context) and encoded for the gateway, which checks them again. */
#include "ops.h"

/* CKF_HW: the device (the signers, through the gateway) performs it; digests run here. */
#define F_RSA (CKF_HW | CKF_SIGN | CKF_VERIFY)
#define F_EC (CKF_HW | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS)
#define NO_KEY ((CK_KEY_TYPE)-1)
#define H(alg) (1 + (alg))

static params_fn pss, oaep, eddsa;

const mech_info_t MECHANISMS[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKK_RSA, CKF_HW | CKF_GENERATE_KEY_PAIR, 2048, 4096, 0, NULL},
    {CKM_RSA_PKCS, CKK_RSA, F_RSA | CKF_ENCRYPT | CKF_DECRYPT, 2048, 4096, 0, NULL},
    {CKM_RSA_PKCS_OAEP, CKK_RSA, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT, 2048, 4096, 0, oaep},
    {CKM_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, 0, pss},
    {CKM_SHA256_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_256), NULL},
    {CKM_SHA384_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_384), NULL},
    {CKM_SHA512_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_512), NULL},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_256), pss},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_384), pss},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_512), pss},
    {CKM_EC_KEY_PAIR_GEN, CKK_EC, CKF_GENERATE_KEY_PAIR | F_EC, 255, 521, 0, NULL},
    {CKM_ECDSA, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 521, 0, NULL},
    {CKM_ECDSA_SHA256, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 521, H(SHA_256), NULL},
    {CKM_ECDSA_SHA384, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 521, H(SHA_384), NULL},
    {CKM_ECDSA_SHA512, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 521, H(SHA_512), NULL},
    {CKM_EC_EDWARDS_KEY_PAIR_GEN, CKK_EC_EDWARDS, CKF_HW | CKF_GENERATE_KEY_PAIR, 255, 255, 0, NULL},
    {CKM_EDDSA, CKK_EC_EDWARDS, CKF_HW | CKF_SIGN | CKF_VERIFY, 255, 255, 0, eddsa},
    {CKM_SHA_1, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_1), NULL},
    {CKM_SHA224, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_224), NULL},
    {CKM_SHA256, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_256), NULL},
    {CKM_SHA384, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_384), NULL},
    {CKM_SHA512, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_512), NULL},
};
const size_t N_MECHANISMS = sizeof MECHANISMS / sizeof MECHANISMS[0];

const mech_info_t *mech_find(CK_MECHANISM_TYPE m) {
  for (size_t i = 0; i < N_MECHANISMS; i++)
    if (MECHANISMS[i].mech == m) return &MECHANISMS[i];
  return NULL;
}

/* The hashes a PSS or OAEP parameter may name, each with the MGF1 over it. */
typedef struct {
  CK_MECHANISM_TYPE mech;
  sha_alg alg;
  CK_RSA_PKCS_MGF_TYPE mgf;
} param_hash_t;
static const param_hash_t PARAM_HASHES[] = {
    {CKM_SHA_1, SHA_1, CKG_MGF1_SHA1},
    {CKM_SHA256, SHA_256, CKG_MGF1_SHA256},
    {CKM_SHA384, SHA_384, CKG_MGF1_SHA384},
    {CKM_SHA512, SHA_512, CKG_MGF1_SHA512},
};

static const param_hash_t *param_hash(CK_MECHANISM_TYPE h) {
  for (size_t i = 0; i < sizeof PARAM_HASHES / sizeof PARAM_HASHES[0]; i++)
    if (PARAM_HASHES[i].mech == h) return &PARAM_HASHES[i];
  return NULL;
}

static const char *pss(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op) {
  const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
  const param_hash_t *h;
  if (!p || m->ulParameterLen != sizeof *p) return "CK_RSA_PKCS_PSS_PARAMS required";
  if (!(h = param_hash(p->hashAlg)) || h->alg == SHA_1) return "PSS hash must be SHA-256, SHA-384 or SHA-512";
  if (mi->hash && h->alg != (sha_alg)(mi->hash - 1)) return "PSS hashAlg differs from the mechanism's hash";
  if (p->mgf != h->mgf) return "PSS MGF must be MGF1 over the same hash";
  if (p->sLen != sha_digest_len(h->alg)) return "PSS salt length must equal the hash length";
  wb_list(&op->params, 3);
  wb_uint(&op->params, p->hashAlg);
  wb_uint(&op->params, p->mgf);
  wb_uint(&op->params, p->sLen);
  return NULL;
}

static const char *oaep(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op) {
  (void)mi;
  const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
  const param_hash_t *h;
  if (!p || m->ulParameterLen != sizeof *p) return "CK_RSA_PKCS_OAEP_PARAMS required";
  if (!(h = param_hash(p->hashAlg)) || (h->alg != SHA_1 && h->alg != SHA_256)) return "OAEP hash must be SHA-1 or SHA-256";
  if (p->mgf != h->mgf) return "OAEP MGF must be MGF1 over the same hash";
  if ((p->source != 0 && p->source != CKZ_DATA_SPECIFIED) || p->ulSourceDataLen != 0) return "OAEP label must be empty";
  wb_list(&op->params, 2);
  wb_uint(&op->params, p->hashAlg);
  wb_uint(&op->params, p->mgf);
  return NULL;
}

static const char *eddsa(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op) {
  (void)mi;
  const CK_EDDSA_PARAMS *p = m->pParameter;
  int ph = 0;
  if (m->ulParameterLen != 0) {
    if (!p || m->ulParameterLen != sizeof *p) return "CK_EDDSA_PARAMS malformed";
    if (p->ulContextDataLen != 0) return "Ed25519 contexts are not supported";
    ph = p->phFlag != 0;
  }
  if (ph) op->hashing = 1, sha_init(&op->hash, SHA_512); /* Ed25519ph signs SHA-512(M) */
  wb_list(&op->params, 1);
  wb_uint(&op->params, (uint64_t)ph);
  return NULL;
}

static const char *none(const CK_MECHANISM *m, crypto_op_t *op) {
  if (m->ulParameterLen != 0) return "this mechanism takes no parameters";
  wb_list(&op->params, 0);
  return NULL;
}

CK_RV mech_params(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op) {
  const char *why = mi->params ? mi->params(mi, m, op) : none(m, op);
  if (!why) return CKR_OK;
  log_msg(LOG_WARN, "mechanism 0x%lx: %s", m->mechanism, why);
  return CKR_MECHANISM_PARAM_INVALID;
}
