/* Digests, computed here (C_Digest*): no request to the gateway. */
#include "ops.h"

CK_RV digest_start(crypto_op_t *op, const CK_MECHANISM *m) {
  const mech_info_t *mi = mech_find(m->mechanism);
  if (op->active) return CKR_OPERATION_ACTIVE;
  if (!mi || !(mi->flags & CKF_DIGEST)) return CKR_MECHANISM_INVALID;
  if (m->ulParameterLen) return CKR_MECHANISM_PARAM_INVALID;
  op->active = 1;
  op->mech = mi->mech;
  op->hashing = 1;
  sha_init(&op->hash, (sha_alg)(mi->hash - 1));
  return CKR_OK;
}

CK_RV digest_out(crypto_op_t *op, const uint8_t *data, size_t len, int final, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  size_t n = sha_digest_len(op->hash.alg);
  if (!op->active) return CKR_OPERATION_NOT_INITIALIZED;
  if (!final && op->multipart) {
    crypto_op_reset(op);
    return CKR_OPERATION_ACTIVE;
  }
  if (!out) {
    *out_len = n;
    return CKR_OK;
  }
  if (*out_len < n) {
    *out_len = n;
    return CKR_BUFFER_TOO_SMALL;
  }
  if (!final) sha_update(&op->hash, data, len);
  sha_final(&op->hash, out);
  *out_len = n;
  crypto_op_reset(op);
  return CKR_OK;
}

CK_RV digest_update(crypto_op_t *op, const uint8_t *part, size_t part_len) {
  if (!op->active) return CKR_OPERATION_NOT_INITIALIZED;
  op->multipart = 1;
  sha_update(&op->hash, part, part_len);
  return CKR_OK;
}

/* Every key here is sensitive; there is nothing to digest. */
CK_RV digest_key(crypto_op_t *op) {
  if (!op->active) return CKR_OPERATION_NOT_INITIALIZED;
  crypto_op_reset(op);
  return CKR_KEY_INDIGESTIBLE;
}
