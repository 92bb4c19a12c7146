/* Mechanisms and operations: the mechanism table (mech.c), starting an operation (start.c),
 * signing, verifying, encrypting and decrypting at the gateway (crypto.c), digests (digest.c)
 * and key-pair generation (keygen.c). Each works on a session the caller holds (session_get). */
#ifndef MPCHSM_OPS_H
#define MPCHSM_OPS_H

#include "../token/token.h"

/* ---- mechanisms (mech.c) ---- */
typedef struct mech_info mech_info_t;
/* Checks a mechanism's parameters and encodes them into op->params; returns why they are
 * refused, or NULL. */
typedef const char *params_fn(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op);
struct mech_info {
  CK_MECHANISM_TYPE mech;
  CK_KEY_TYPE key_type; /* (CK_ULONG)-1: none (digests) */
  CK_FLAGS flags;
  CK_ULONG min_bits, max_bits;
  int hash;           /* 1 + sha_alg the module applies to the data; 0: data goes as it is */
  params_fn *params;  /* NULL: the mechanism takes no parameters */
};
extern const mech_info_t MECHANISMS[];
extern const size_t N_MECHANISMS;
const mech_info_t *mech_find(CK_MECHANISM_TYPE m);
/* The row's parameter check and encoding; CKR_MECHANISM_PARAM_INVALID (logged) if refused. */
CK_RV mech_params(const mech_info_t *mi, const CK_MECHANISM *m, crypto_op_t *op);

/* ---- starting sign, verify, encrypt or decrypt (start.c); kind: KIND_SIGN ... KIND_DECRYPT ---- */
CK_RV op_start(int kind, crypto_op_t *op, const CK_MECHANISM *m, CK_OBJECT_HANDLE hKey);

/* ---- the operations (crypto.c) ---- */
/* C_Sign/C_Encrypt/C_Decrypt (data, final 0) and their Final forms (data NULL, final 1). */
CK_RV op_produce(int kind, crypto_op_t *op, const uint8_t *data, size_t data_len, int final, CK_BYTE_PTR out,
                 CK_ULONG_PTR out_len);
CK_RV op_update(crypto_op_t *op, const uint8_t *part, size_t part_len);
/* C_Verify (data, final 0) and C_VerifyFinal (data NULL, final 1). */
CK_RV op_verify(crypto_op_t *op, const uint8_t *data, size_t data_len, int final, const uint8_t *sig, size_t sig_len);

/* ---- digests, here (digest.c) ---- */
CK_RV digest_start(crypto_op_t *op, const CK_MECHANISM *m);
CK_RV digest_out(crypto_op_t *op, const uint8_t *data, size_t len, int final, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV digest_update(crypto_op_t *op, const uint8_t *part, size_t part_len);
CK_RV digest_key(crypto_op_t *op);

/* ---- key-pair generation (keygen.c) ---- */
CK_RV keygen(const session_t *s, const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
             CK_ULONG npriv, CK_OBJECT_HANDLE *ph_pub, CK_OBJECT_HANDLE *ph_priv);

#endif
