/* Sign, verify, encrypt and decrypt at the gateway, past their Init: input (buffered, or hashed
 * here), the request, and the result under PKCS#11's length rules.
 *
 * Output length rules (PKCS#11 v2.40 §5.2): a NULL output buffer asks for the length and
 * leaves the operation active; so does CKR_BUFFER_TOO_SMALL. A signature's or ciphertext's
 * length is known before the gateway is asked, so neither a length query nor a short buffer
 * costs a signing session. A plaintext's is not: a buffer shorter than the modulus sends the
 * request, and a result that does not fit is kept for the caller's next try. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DATA (16 * 1024 * 1024)

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
  int proves = kind == KIND_SIGN || kind == KIND_DECRYPT;
  char *principal = NULL;
  uint8_t key[HMAC_SHA256_LEN];
  char *token = proves ? token_copy_keyed(NULL, &principal, key) : token_copy(NULL);
  if (!token && op->key.uid) {
    log_msg(LOG_WARN, "%s: not logged in", what[kind]);
    return CKR_USER_NOT_LOGGED_IN;
  }
  rpc_t q;
  rpc_begin(&q, ops[kind], token, kind == KIND_ENCRYPT ? 5 : 6);
  size_t args = q.w.len;
  wb_key_ref(&q.w, &op->key);
  wb_uint(&q.w, op->mech);
  wb_raw(&q.w, op->params.data, op->params.len);
  wb_bytes(&q.w, in, in_len);
  wb_uint(&q.w, (uint64_t)op->hashing);
  CK_RV rv = CKR_OK;
  if (kind == KIND_VERIFY) wb_bytes(&q.w, sig, sig_len);
  else if (proves) rv = auth_proof(&q.w, args, 5, ops[kind], principal, key);
  explicit_bzero(key, sizeof key);
  free(principal);
  if (rv == CKR_OK) rv = rpc_call(&q, what[kind], M.cfg.timeout_ms, 1);
  if (rv == CKR_OK && kind != KIND_VERIFY) {
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

/* ---- results ------------------------------------------------------------------------- */

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

CK_RV op_produce(int kind, crypto_op_t *op, const uint8_t *data, size_t data_len, int final, CK_BYTE_PTR out,
                 CK_ULONG_PTR out_len) {
  if (!op->active) return CKR_OPERATION_NOT_INITIALIZED;
  if (!final && op->multipart) {
    crypto_op_reset(op); /* C_Sign after C_SignUpdate */
    return CKR_OPERATION_ACTIVE;
  }
  /* A result kept from a too-short buffer answers the same request again. */
  if (op->result && (final || (data_len == op->result_input_len && (!data_len || !memcmp(data, op->result_input, data_len)))))
    return deliver(op, out, out_len);
  /* Signatures and ciphertexts have a known length: no request for a length query. */
  if (kind != KIND_DECRYPT && (!out || *out_len < op->key.out_len) && op->key.out_len) {
    *out_len = op->key.out_len;
    return out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
  }
  if (kind == KIND_DECRYPT && !out) {
    *out_len = op->key.out_len; /* an upper bound, as §5.2 allows */
    return CKR_OK;
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
  CK_RV rv = remote(kind, op, in, in_len, NULL, 0, &result, &result_len);
  if (rv != CKR_OK) {
    crypto_op_reset(op);
    return rv;
  }
  op->result = result, op->result_len = result_len;
  /* Too long for the caller's buffer: remember which input it answers, for the retry. */
  if (!final && data_len && (!out || *out_len < result_len)) {
    op->result_input = malloc(data_len);
    if (!op->result_input) {
      crypto_op_reset(op);
      return CKR_HOST_MEMORY;
    }
    memcpy(op->result_input, data, data_len);
    op->result_input_len = data_len;
  }
  return deliver(op, out, out_len);
}

CK_RV op_update(crypto_op_t *op, const uint8_t *part, size_t part_len) {
  if (!op->active) return CKR_OPERATION_NOT_INITIALIZED;
  op->multipart = 1;
  CK_RV rv = absorb(op, part, part_len);
  if (rv != CKR_OK) crypto_op_reset(op);
  return rv;
}

CK_RV op_verify(crypto_op_t *op, const uint8_t *data, size_t data_len, int final, const uint8_t *sig, size_t sig_len) {
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
    rv = remote(KIND_VERIFY, op, in, in_len, sig, sig_len, NULL, NULL);
  }
  if (op->active) crypto_op_reset(op); /* verification always ends the operation */
  return rv;
}
