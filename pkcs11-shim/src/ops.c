/* Cryptographic operations: sign, verify, encrypt, decrypt (at the gateway), digest (here),
 * random (the kernel), key-pair generation (at the gateway, key administrators only).
 *
 * Output length rules (PKCS#11 v2.40 §5.2): a NULL output buffer asks for the length and
 * leaves the operation active; so does CKR_BUFFER_TOO_SMALL. A signature's or ciphertext's
 * length is known before the gateway is asked, so neither a length query nor a short buffer
 * costs a signing session. A plaintext's is not: a buffer shorter than the modulus sends the
 * request, and a result that does not fit is kept for the caller's next try. */
#include "module.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* CKF_HW: the device (the signers, through the gateway) performs it; digests run here. */
#define F_RSA (CKF_HW | CKF_SIGN | CKF_VERIFY)
#define F_EC (CKF_HW | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS)
#define NO_KEY ((CK_KEY_TYPE)-1)
#define H(alg) (1 + (alg))

const mech_info_t MECHANISMS[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, CKK_RSA, CKF_HW | CKF_GENERATE_KEY_PAIR, 2048, 4096, 0},
    {CKM_RSA_PKCS, CKK_RSA, F_RSA | CKF_ENCRYPT | CKF_DECRYPT, 2048, 4096, 0},
    {CKM_RSA_PKCS_OAEP, CKK_RSA, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT, 2048, 4096, 0},
    {CKM_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, 0},
    {CKM_SHA256_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_256)},
    {CKM_SHA384_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_384)},
    {CKM_SHA512_RSA_PKCS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_512)},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_256)},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_384)},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, F_RSA, 2048, 4096, H(SHA_512)},
    {CKM_EC_KEY_PAIR_GEN, CKK_EC, CKF_GENERATE_KEY_PAIR | F_EC, 255, 384, 0},
    {CKM_ECDSA, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 384, 0},
    {CKM_ECDSA_SHA256, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 384, H(SHA_256)},
    {CKM_ECDSA_SHA384, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 384, H(SHA_384)},
    {CKM_ECDSA_SHA512, CKK_EC, CKF_SIGN | CKF_VERIFY | F_EC, 256, 384, H(SHA_512)},
    {CKM_EC_EDWARDS_KEY_PAIR_GEN, CKK_EC_EDWARDS, CKF_HW | CKF_GENERATE_KEY_PAIR, 255, 255, 0},
    {CKM_EDDSA, CKK_EC_EDWARDS, CKF_HW | CKF_SIGN | CKF_VERIFY, 255, 255, 0},
    {CKM_SHA_1, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_1)},
    {CKM_SHA224, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_224)},
    {CKM_SHA256, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_256)},
    {CKM_SHA384, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_384)},
    {CKM_SHA512, NO_KEY, CKF_DIGEST, 0, 0, H(SHA_512)},
};
const size_t N_MECHANISMS = sizeof MECHANISMS / sizeof MECHANISMS[0];

#define MAX_DATA (16 * 1024 * 1024)

const mech_info_t *mech_find(CK_MECHANISM_TYPE m) {
  for (size_t i = 0; i < N_MECHANISMS; i++)
    if (MECHANISMS[i].mech == m) return &MECHANISMS[i];
  return NULL;
}

void crypto_op_reset(crypto_op_t *op) {
  key_ref_free(&op->key);
  wb_free(&op->params);
  free(op->data);
  free(op->result);
  free(op->result_input);
  memset(op, 0, sizeof *op);
}

/* ---- mechanism parameters ------------------------------------------------------------ */

static int hash_of(CK_MECHANISM_TYPE h, sha_alg *alg) {
  switch (h) {
    case CKM_SHA_1: *alg = SHA_1; return 0;
    case CKM_SHA256: *alg = SHA_256; return 0;
    case CKM_SHA384: *alg = SHA_384; return 0;
    case CKM_SHA512: *alg = SHA_512; return 0;
    default: return -1;
  }
}

static CK_RSA_PKCS_MGF_TYPE mgf_of(sha_alg a) {
  switch (a) {
    case SHA_1: return CKG_MGF1_SHA1;
    case SHA_256: return CKG_MGF1_SHA256;
    case SHA_384: return CKG_MGF1_SHA384;
    case SHA_512: return CKG_MGF1_SHA512;
    default: return 0;
  }
}

/* Checks the mechanism's parameters against what the threshold schemes sign (PSS with MGF1
 * over the same hash and a salt as long as the hash; OAEP with SHA-1 or SHA-256 and no label;
 * Ed25519 without context) and encodes them for the gateway, which checks them again. */
static CK_RV encode_params(const CK_MECHANISM *m, crypto_op_t *op) {
  wbuf *w = &op->params;
  const char *why = NULL;
  switch (m->mechanism) {
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS: {
      const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
      sha_alg h;
      if (!p || m->ulParameterLen != sizeof *p) why = "CK_RSA_PKCS_PSS_PARAMS required";
      else if (hash_of(p->hashAlg, &h) || h == SHA_1) why = "PSS hash must be SHA-256, SHA-384 or SHA-512";
      else if (op->mi->hash && h != (sha_alg)(op->mi->hash - 1)) why = "PSS hashAlg differs from the mechanism's hash";
      else if (p->mgf != mgf_of(h)) why = "PSS MGF must be MGF1 over the same hash";
      else if (p->sLen != sha_digest_len(h)) why = "PSS salt length must equal the hash length";
      if (why) break;
      wb_list(w, 3);
      wb_uint(w, p->hashAlg);
      wb_uint(w, p->mgf);
      wb_uint(w, p->sLen);
      return CKR_OK;
    }
    case CKM_RSA_PKCS_OAEP: {
      const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
      sha_alg h;
      if (!p || m->ulParameterLen != sizeof *p) why = "CK_RSA_PKCS_OAEP_PARAMS required";
      else if (hash_of(p->hashAlg, &h) || (h != SHA_1 && h != SHA_256)) why = "OAEP hash must be SHA-1 or SHA-256";
      else if (p->mgf != mgf_of(h)) why = "OAEP MGF must be MGF1 over the same hash";
      else if ((p->source != 0 && p->source != CKZ_DATA_SPECIFIED) || p->ulSourceDataLen != 0) why = "OAEP label must be empty";
      if (why) break;
      wb_list(w, 2);
      wb_uint(w, p->hashAlg);
      wb_uint(w, p->mgf);
      return CKR_OK;
    }
    case CKM_EDDSA: {
      const CK_EDDSA_PARAMS *p = m->pParameter;
      int ph = 0;
      if (m->ulParameterLen != 0) {
        if (!p || m->ulParameterLen != sizeof *p) why = "CK_EDDSA_PARAMS malformed";
        else if (p->ulContextDataLen != 0) why = "Ed25519 contexts are not supported";
        else ph = p->phFlag != 0;
      }
      if (why) break;
      if (ph) op->hashing = 1, sha_init(&op->hash, SHA_512); /* Ed25519ph signs SHA-512(M) */
      wb_list(w, 1);
      wb_uint(w, (uint64_t)ph);
      return CKR_OK;
    }
    default:
      if (m->ulParameterLen != 0) why = "this mechanism takes no parameters";
      if (why) break;
      wb_list(w, 0);
      return CKR_OK;
  }
  log_msg(LOG_WARN, "mechanism 0x%lx: %s", m->mechanism, why);
  return CKR_MECHANISM_PARAM_INVALID;
}

/* ---- initialisation ------------------------------------------------------------------ */

enum { SIGN, VERIFY, ENCRYPT, DECRYPT };
static const char *const OP_NAMES[] = {"sign", "verify", "encrypt", "decrypt"};

static crypto_op_t *op_of(session_t *s, int kind) {
  switch (kind) {
    case SIGN: return &s->sign;
    case VERIFY: return &s->verify;
    case ENCRYPT: return &s->encrypt;
    default: return &s->decrypt;
  }
}

static int allowed(const object_t *o, CK_MECHANISM_TYPE m) {
  const attr_t *a = object_attr(o, CKA_ALLOWED_MECHANISMS);
  if (!a) return 1;
  for (size_t i = 0; i + sizeof(CK_MECHANISM_TYPE) <= a->len; i += sizeof(CK_MECHANISM_TYPE)) {
    CK_MECHANISM_TYPE t;
    memcpy(&t, a->value + i, sizeof t);
    if (t == m) return 1;
  }
  return 0;
}

/* Which key may do what: signing and decryption need the private key; verification and
 * encryption take the public key (or its private twin, as some applications pass), or a
 * session key. Who may use a token key is the gateway's decision (needs_check). */
static CK_RV check_key(int kind, const mech_info_t *mi, const object_t *o) {
  CK_OBJECT_CLASS cls = object_ulong(o, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
  if (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY) return CKR_KEY_HANDLE_INVALID;
  if ((kind == SIGN || kind == DECRYPT) && cls != CKO_PRIVATE_KEY) return CKR_KEY_TYPE_INCONSISTENT;
  if (object_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION) != mi->key_type) return CKR_KEY_TYPE_INCONSISTENT;
  static const CK_ATTRIBUTE_TYPE priv_use[] = {CKA_SIGN, CKA_SIGN, CKA_DECRYPT, CKA_DECRYPT};
  static const CK_ATTRIBUTE_TYPE pub_use[] = {CKA_VERIFY, CKA_VERIFY, CKA_ENCRYPT, CKA_ENCRYPT};
  if (!object_bool(o, cls == CKO_PRIVATE_KEY ? priv_use[kind] : pub_use[kind])) return CKR_KEY_FUNCTION_NOT_PERMITTED;
  if (!allowed(o, mi->mech)) return CKR_MECHANISM_INVALID;
  return CKR_OK;
}

/* Only applications (CKU_USER) use token keys. Under another login the module expects a
 * refusal and lets the gateway give it, so that it is recorded there; an application's
 * operations cost no extra round trip. */
static int needs_check(const key_ref_t *k, int login) { return k->uid && login != LOGIN_USER; }

static CK_FLAGS kind_flag(int kind) {
  static const CK_FLAGS f[] = {CKF_SIGN, CKF_VERIFY, CKF_ENCRYPT, CKF_DECRYPT};
  return f[kind];
}

static CK_RV op_init(int kind, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!pMechanism) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  crypto_op_t *op = op_of(s, kind);
  CK_RV rv = CKR_OK;
  const mech_info_t *mi = mech_find(pMechanism->mechanism);
  if (op->active) rv = CKR_OPERATION_ACTIVE;
  else if (!mi || !(mi->flags & kind_flag(kind))) rv = CKR_MECHANISM_INVALID;
  if (rv == CKR_OK) {
    pthread_mutex_lock(&M.lock);
    object_t *o = object_get(hKey);
    int login = M.login;
    rv = o ? check_key(kind, mi, o) : CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK) rv = key_ref_from(o, &op->key);
    pthread_mutex_unlock(&M.lock);
    static const char *const what[] = {"C_SignInit", "C_VerifyInit", "C_EncryptInit", "C_DecryptInit"};
    if (rv == CKR_OK && needs_check(&op->key, login)) rv = rpc_check(OP_NAMES[kind], op->key.uid, what[kind]);
  }
  if (rv == CKR_OK) {
    op->mi = mi;
    op->mech = mi->mech;
    if (mi->hash) op->hashing = 1, sha_init(&op->hash, (sha_alg)(mi->hash - 1));
    rv = encode_params(pMechanism, op);
  }
  if (rv == CKR_OK) op->active = 1;
  else if (!op->active || rv != CKR_OPERATION_ACTIVE) crypto_op_reset(op);
  if (rv != CKR_OK && rv != CKR_OPERATION_ACTIVE)
    log_msg(LOG_DEBUG, "C_%sInit(mechanism 0x%lx, key %lu): CKR 0x%lx", OP_NAMES[kind], pMechanism->mechanism, hKey, rv);
  session_put(s);
  return rv;
}

CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return op_init(SIGN, h, m, k); }
CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return op_init(VERIFY, h, m, k); }
CK_RV C_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return op_init(ENCRYPT, h, m, k); }
CK_RV C_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return op_init(DECRYPT, h, m, k); }

/* ---- input --------------------------------------------------------------------------- */

static CK_RV absorb(crypto_op_t *op, const uint8_t *p, size_t n) {
  if (op->hashing) {
    sha_update(&op->hash, p, n);
    return CKR_OK;
  }
  if (n > MAX_DATA - op->data_len) return CKR_DATA_LEN_RANGE;
  if (op->data_len + n > op->data_cap) {
    size_t cap = op->data_cap ? op->data_cap : 256;
    while (cap < op->data_len + n) cap *= 2;
    uint8_t *d = realloc(op->data, cap);
    if (!d) return CKR_HOST_MEMORY;
    op->data = d, op->data_cap = cap;
  }
  if (n) memcpy(op->data + op->data_len, p, n);
  op->data_len += n;
  return CKR_OK;
}

/* The bytes the gateway gets: the buffered data, or the digest of everything absorbed. */
static void input_of(crypto_op_t *op, uint8_t *digest, const uint8_t **in, size_t *in_len) {
  if (op->hashing) {
    sha_final(&op->hash, digest);
    *in = digest, *in_len = sha_digest_len(op->hash.alg);
  } else {
    *in = op->data, *in_len = op->data_len;
  }
}

/* ---- the request --------------------------------------------------------------------- */

/* Verify's sixth argument is the signature; Sign's and Decrypt's the principal's proof (auth.c),
 * which each signer checks. */
static CK_RV remote(int kind, crypto_op_t *op, const uint8_t *in, size_t in_len, const uint8_t *sig, size_t sig_len,
                    uint8_t **out, size_t *out_len) {
  static const int ops[] = {OP_SIGN, OP_VERIFY, OP_ENCRYPT, OP_DECRYPT};
  static const char *const what[] = {"C_Sign", "C_Verify", "C_Encrypt", "C_Decrypt"};
  int proves = kind == SIGN || kind == DECRYPT;
  char *principal = NULL;
  uint8_t key[HMAC_SHA256_LEN];
  char *token = proves ? token_copy_keyed(NULL, &principal, key) : token_copy(NULL);
  if (!token && op->key.uid) {
    log_msg(LOG_WARN, "%s: not logged in", what[kind]);
    return CKR_USER_NOT_LOGGED_IN;
  }
  rpc_t q;
  rpc_begin(&q, ops[kind], token, kind == ENCRYPT ? 5 : 6);
  size_t args = q.w.len;
  wb_key_ref(&q.w, &op->key);
  wb_uint(&q.w, op->mech);
  wb_raw(&q.w, op->params.data, op->params.len);
  wb_bytes(&q.w, in, in_len);
  wb_uint(&q.w, (uint64_t)op->hashing);
  CK_RV rv = CKR_OK;
  if (kind == VERIFY) wb_bytes(&q.w, sig, sig_len);
  else if (proves) rv = auth_proof(&q.w, args, 5, ops[kind], principal, key);
  explicit_bzero(key, sizeof key);
  free(principal);
  if (rv == CKR_OK) rv = rpc_call(&q, what[kind], M.cfg.timeout_ms, 1);
  if (rv == CKR_OK && kind != VERIFY) {
    const uint8_t *p;
    size_t n;
    if (rd_bytes(&q.r, &p, &n)) {
      log_msg(LOG_ERROR, "%s: the gateway sent a malformed answer", what[kind]);
      rv = CKR_DEVICE_ERROR;
    } else if (!(*out = malloc(n ? n : 1))) {
      rv = CKR_HOST_MEMORY;
    } else {
      memcpy(*out, p, n);
      *out_len = n;
    }
  }
  rpc_end(&q);
  free(token);
  return rv;
}

/* Hands `op->result` to the caller under the §5.2 rules; the operation ends once it fits. */
static CK_RV deliver(crypto_op_t *op, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (!out) {
    *out_len = op->result_len;
    return CKR_OK;
  }
  if (*out_len < op->result_len) {
    *out_len = op->result_len;
    return CKR_BUFFER_TOO_SMALL;
  }
  memcpy(out, op->result, op->result_len);
  *out_len = op->result_len;
  crypto_op_reset(op);
  return CKR_OK;
}

/* C_Sign/C_Encrypt/C_Decrypt and their Final forms. `data` is NULL for Final. */
static CK_RV produce(int kind, CK_SESSION_HANDLE hSession, const uint8_t *data, size_t data_len, int final, CK_BYTE_PTR out,
                     CK_ULONG_PTR out_len) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!out_len || (!final && !data && data_len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  crypto_op_t *op = op_of(s, kind);
  CK_RV rv;
  if (!op->active) {
    rv = CKR_OPERATION_NOT_INITIALIZED;
    goto done;
  }
  if (!final && op->multipart) {
    crypto_op_reset(op); /* C_Sign after C_SignUpdate */
    rv = CKR_OPERATION_ACTIVE;
    goto done;
  }
  /* A result kept from a too-short buffer answers the same request again. */
  if (op->result && (final || (data_len == op->result_input_len && (!data_len || !memcmp(data, op->result_input, data_len))))) {
    rv = deliver(op, out, out_len);
    goto done;
  }
  /* Signatures and ciphertexts have a known length: no request for a length query. */
  if (kind != DECRYPT && (!out || *out_len < op->key.out_len) && op->key.out_len) {
    if (out) rv = CKR_BUFFER_TOO_SMALL;
    else rv = CKR_OK;
    *out_len = op->key.out_len;
    goto done;
  }
  if (kind == DECRYPT && !out) {
    *out_len = op->key.out_len; /* an upper bound, as §5.2 allows */
    rv = CKR_OK;
    goto done;
  }
  uint8_t digest[SHA_MAX_DIGEST];
  const uint8_t *in;
  size_t in_len;
  if (!final) {
    if (op->hashing) sha_update(&op->hash, data, data_len), input_of(op, digest, &in, &in_len);
    else in = data, in_len = data_len;
  } else {
    input_of(op, digest, &in, &in_len);
  }
  uint8_t *result = NULL;
  size_t result_len = 0;
  rv = remote(kind, op, in, in_len, NULL, 0, &result, &result_len);
  if (rv != CKR_OK) {
    crypto_op_reset(op);
    goto done;
  }
  op->result = result, op->result_len = result_len;
  /* Too long for the caller's buffer: remember which input it answers, for the retry. */
  if (!final && data_len && (!out || *out_len < result_len)) {
    op->result_input = malloc(data_len);
    if (!op->result_input) {
      crypto_op_reset(op);
      rv = CKR_HOST_MEMORY;
      goto done;
    }
    memcpy(op->result_input, data, data_len);
    op->result_input_len = data_len;
  }
  rv = deliver(op, out, out_len);
done:
  session_put(s);
  return rv;
}

static CK_RV update(int kind, CK_SESSION_HANDLE hSession, const uint8_t *part, size_t part_len) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!part && part_len) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  crypto_op_t *op = op_of(s, kind);
  CK_RV rv = CKR_OK;
  if (!op->active) rv = CKR_OPERATION_NOT_INITIALIZED;
  else {
    op->multipart = 1;
    rv = absorb(op, part, part_len);
    if (rv != CKR_OK) crypto_op_reset(op);
  }
  session_put(s);
  return rv;
}

CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  return produce(SIGN, h, pData, ulDataLen, 0, pSignature, pulSignatureLen);
}
CK_RV C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) { return update(SIGN, h, pPart, ulPartLen); }
CK_RV C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  return produce(SIGN, h, NULL, 0, 1, pSignature, pulSignatureLen);
}

CK_RV C_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(ENCRYPT, h, pData, ulDataLen, 0, pOut, pulOutLen);
}
/* RSA encryption and decryption are single-part at heart: parts are gathered and nothing comes
 * out until Final. */
static CK_RV gather(int op, CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_ULONG_PTR pulOutLen) {
  if (!pulOutLen) return CKR_ARGUMENTS_BAD;
  CK_RV rv = update(op, h, pPart, ulPartLen);
  if (rv == CKR_OK) *pulOutLen = 0;
  return rv;
}
CK_RV C_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  (void)pOut;
  return gather(ENCRYPT, h, pPart, ulPartLen, pulOutLen);
}
CK_RV C_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(ENCRYPT, h, NULL, 0, 1, pOut, pulOutLen);
}

CK_RV C_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pIn, CK_ULONG ulInLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  return produce(DECRYPT, h, pIn, ulInLen, 0, pData, pulDataLen);
}
CK_RV C_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  (void)pOut;
  return gather(DECRYPT, h, pPart, ulPartLen, pulOutLen);
}
CK_RV C_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(DECRYPT, h, NULL, 0, 1, pOut, pulOutLen);
}

static CK_RV verify(CK_SESSION_HANDLE hSession, const uint8_t *data, size_t data_len, int final, const uint8_t *sig, size_t sig_len) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if ((!final && !data && data_len) || (!sig && sig_len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  crypto_op_t *op = &s->verify;
  CK_RV rv;
  if (!op->active) rv = CKR_OPERATION_NOT_INITIALIZED;
  else if (!final && op->multipart) rv = CKR_OPERATION_ACTIVE;
  else if (op->key.out_len && sig_len != op->key.out_len) rv = CKR_SIGNATURE_LEN_RANGE;
  else {
    uint8_t digest[SHA_MAX_DIGEST];
    const uint8_t *in;
    size_t in_len;
    if (!final && op->hashing) sha_update(&op->hash, data, data_len), input_of(op, digest, &in, &in_len);
    else if (!final) in = data, in_len = data_len;
    else input_of(op, digest, &in, &in_len);
    rv = remote(VERIFY, op, in, in_len, sig, sig_len, NULL, NULL);
  }
  if (op->active) crypto_op_reset(op); /* verification always ends the operation */
  session_put(s);
  return rv;
}

CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  return verify(h, pData, ulDataLen, 0, pSignature, ulSignatureLen);
}
CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) { return update(VERIFY, h, pPart, ulPartLen); }
CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  return verify(h, NULL, 0, 1, pSignature, ulSignatureLen);
}

/* ---- digest (local) ------------------------------------------------------------------ */

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!pMechanism) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  const mech_info_t *mi = mech_find(pMechanism->mechanism);
  CK_RV rv = CKR_OK;
  if (s->digest.active) rv = CKR_OPERATION_ACTIVE;
  else if (!mi || !(mi->flags & CKF_DIGEST)) rv = CKR_MECHANISM_INVALID;
  else if (pMechanism->ulParameterLen) rv = CKR_MECHANISM_PARAM_INVALID;
  else {
    s->digest.active = 1;
    s->digest.mech = mi->mech;
    s->digest.hashing = 1;
    sha_init(&s->digest.hash, (sha_alg)(mi->hash - 1));
  }
  session_put(s);
  return rv;
}

static CK_RV digest_out(CK_SESSION_HANDLE hSession, const uint8_t *data, size_t len, int final, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!out_len || (!final && !data && len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  crypto_op_t *op = &s->digest;
  CK_RV rv = CKR_OK;
  size_t n = sha_digest_len(op->hash.alg);
  if (!op->active) rv = CKR_OPERATION_NOT_INITIALIZED;
  else if (!final && op->multipart) {
    crypto_op_reset(op);
    rv = CKR_OPERATION_ACTIVE;
  } else if (!out) *out_len = n;
  else if (*out_len < n) *out_len = n, rv = CKR_BUFFER_TOO_SMALL;
  else {
    if (!final) sha_update(&op->hash, data, len);
    sha_final(&op->hash, out);
    *out_len = n;
    crypto_op_reset(op);
  }
  session_put(s);
  return rv;
}

CK_RV C_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  return digest_out(h, pData, ulDataLen, 0, pDigest, pulDigestLen);
}
CK_RV C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!pPart && ulPartLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = CKR_OK;
  if (!s->digest.active) rv = CKR_OPERATION_NOT_INITIALIZED;
  else s->digest.multipart = 1, sha_update(&s->digest.hash, pPart, ulPartLen);
  session_put(s);
  return rv;
}
CK_RV C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  return digest_out(h, NULL, 0, 1, pDigest, pulDigestLen);
}
/* Every key here is sensitive; there is nothing to digest. */
CK_RV C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE hKey) {
  (void)hKey;
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = s->digest.active ? CKR_KEY_INDIGESTIBLE : CKR_OPERATION_NOT_INITIALIZED;
  if (s->digest.active) crypto_op_reset(&s->digest);
  session_put(s);
  return rv;
}

/* ---- random -------------------------------------------------------------------------- */

int random_fill(uint8_t *p, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t k = getrandom(p + got, n - got > 1 << 20 ? 1 << 20 : n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}

/* The kernel's generator: as good as any the gateway could offer, without a round trip. */
CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR pRandom, CK_ULONG ulLen) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!pRandom && ulLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = CKR_OK;
  if (random_fill(pRandom, ulLen)) {
    log_msg(LOG_ERROR, "C_GenerateRandom: getrandom failed: %s", strerror(errno));
    rv = CKR_FUNCTION_FAILED;
  }
  session_put(s);
  return rv;
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
  (void)h, (void)pSeed, (void)ulSeedLen;
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  return CKR_RANDOM_SEED_NOT_SUPPORTED;
}

/* ---- key generation ------------------------------------------------------------------ */

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPub, CK_ULONG nPub,
                        CK_ATTRIBUTE_PTR pPriv, CK_ULONG nPriv, CK_OBJECT_HANDLE_PTR phPub, CK_OBJECT_HANDLE_PTR phPriv) {
  if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (!pMechanism || !phPub || !phPriv || (nPub && !pPub) || (nPriv && !pPriv)) return CKR_ARGUMENTS_BAD;
  for (CK_ULONG i = 0; i < nPub; i++)
    if (!pPub[i].pValue && pPub[i].ulValueLen) return CKR_ARGUMENTS_BAD;
  for (CK_ULONG i = 0; i < nPriv; i++)
    if (!pPriv[i].pValue && pPriv[i].ulValueLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  const mech_info_t *mi = mech_find(pMechanism->mechanism);
  int login;
  char *principal = NULL;
  uint8_t key[HMAC_SHA256_LEN];
  char *token = token_copy_keyed(&login, &principal, key);
  CK_RV rv = CKR_OK;
  if (!mi || !(mi->flags & CKF_GENERATE_KEY_PAIR)) rv = CKR_MECHANISM_INVALID;
  else if (pMechanism->ulParameterLen) rv = CKR_MECHANISM_PARAM_INVALID;
  else if (!(s->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
  else if (login == LOGIN_NONE) {
    log_msg(LOG_WARN, "C_GenerateKeyPair: needs a key administrator (CKU_SO) login");
    rv = CKR_USER_NOT_LOGGED_IN;
  }
  /* Under an application's login the gateway refuses it (and records the refusal). The proof
   * is the administrator's request, which each signer checks before making the key. */
  if (rv == CKR_OK) {
    rpc_t q;
    rpc_begin(&q, OP_GENERATE_KEY_PAIR, token, 4);
    size_t args = q.w.len;
    wb_uint(&q.w, mi->mech);
    wb_template(&q.w, pPub, nPub);
    wb_template(&q.w, pPriv, nPriv);
    rv = auth_proof(&q.w, args, 3, OP_GENERATE_KEY_PAIR, principal, key);
    if (rv == CKR_OK) {
      log_msg(LOG_INFO, "C_GenerateKeyPair: generating (mechanism 0x%lx); this takes a while for RSA", mi->mech);
      rv = rpc_call(&q, "C_GenerateKeyPair", M.cfg.keygen_timeout_ms, 0);
    }
    if (rv == CKR_OK) {
      pthread_mutex_lock(&M.lock);
      CK_OBJECT_HANDLE pub = object_upsert_from_wire(&q.r);
      CK_OBJECT_HANDLE priv = pub && pub != (CK_OBJECT_HANDLE)-1 ? object_upsert_from_wire(&q.r) : pub;
      pthread_mutex_unlock(&M.lock);
      if (pub == (CK_OBJECT_HANDLE)-1 || priv == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
      else if (!pub || !priv) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_GenerateKeyPair: the gateway sent a malformed answer");
      else *phPub = pub, *phPriv = priv;
    }
    rpc_end(&q);
  }
  explicit_bzero(key, sizeof key);
  free(principal);
  free(token);
  session_put(s);
  return rv;
}

/* ---- what the module does not do ----------------------------------------------------- */

#define NOT_SUPPORTED(name, params, ...)                                             \
  CK_RV name params {                                                               \
    __VA_ARGS__;                                                                    \
    if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;    \
    return CKR_FUNCTION_NOT_SUPPORTED;                                              \
  }
#define U(x) (void)(x)

/* Keys never leave the signers and there are no secret keys: no wrapping, unwrapping,
 * derivation or symmetric generation; no recovery signatures; no dual-function updates;
 * no message-based (PKCS#11 3.0 AEAD-style) operations. */
NOT_SUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), U(a), U(b), U(c), U(d), U(e), U(f))
NOT_SUPPORTED(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), U(a), U(b), U(c), U(d), U(e), U(f))
NOT_SUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_MessageEncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_EncryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g, CK_BYTE_PTR h, CK_ULONG_PTR i), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h), U(i))
NOT_SUPPORTED(C_EncryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_EncryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g, CK_FLAGS h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_MessageEncryptFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageDecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_DecryptMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g, CK_BYTE_PTR h, CK_ULONG_PTR i), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h), U(i))
NOT_SUPPORTED(C_DecryptMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), U(a), U(b), U(c), U(d), U(e))
NOT_SUPPORTED(C_DecryptMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g, CK_FLAGS h), U(a), U(b), U(c), U(d), U(e), U(f), U(g), U(h))
NOT_SUPPORTED(C_MessageDecryptFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageSignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_SignMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c), U(a), U(b), U(c))
NOT_SUPPORTED(C_SignMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_MessageSignFinal, (CK_SESSION_HANDLE a), U(a))
NOT_SUPPORTED(C_MessageVerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyMessage, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_VerifyMessageBegin, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c), U(a), U(b), U(c))
NOT_SUPPORTED(C_VerifyMessageNext, (CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g), U(a), U(b), U(c), U(d), U(e), U(f), U(g))
NOT_SUPPORTED(C_MessageVerifyFinal, (CK_SESSION_HANDLE a), U(a))
