/* Starting sign, verify, encrypt or decrypt (C_*Init): the mechanism, which key may do what,
 * the gateway's word where a refusal is expected, and the mechanism's parameters. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[] = {"sign", "verify", "encrypt", "decrypt"};

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
  if ((kind == KIND_SIGN || kind == KIND_DECRYPT) && cls != CKO_PRIVATE_KEY) return CKR_KEY_TYPE_INCONSISTENT;
  if (object_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION) != mi->key_type) return CKR_KEY_TYPE_INCONSISTENT;
  static const CK_ATTRIBUTE_TYPE priv_use[] = {CKA_SIGN, CKA_SIGN, CKA_DECRYPT, CKA_DECRYPT};
  static const CK_ATTRIBUTE_TYPE pub_use[] = {CKA_VERIFY, CKA_VERIFY, CKA_ENCRYPT, CKA_ENCRYPT};
  if (!object_bool(o, cls == CKO_PRIVATE_KEY ? priv_use[kind] : pub_use[kind])) return CKR_KEY_FUNCTION_NOT_PERMITTED;
  if (!allowed(o, mi->mech)) return CKR_MECHANISM_INVALID;
  return CKR_OK;
}

/* Only applications (CKU_USER) use token keys. Under an administrator's login the module expects
 * a refusal and lets the gateway give it, so that it is recorded there; an application's
 * operations cost no extra round trip. */
static int needs_check(const key_ref_t *k, int login) { return k->uid && login != LOGIN_USER; }

CK_RV op_start(int kind, crypto_op_t *op, const CK_MECHANISM *m, CK_OBJECT_HANDLE hKey) {
  CK_RV rv = CKR_OK;
  const mech_info_t *mi = mech_find(m->mechanism);
  if (op->active) rv = CKR_OPERATION_ACTIVE;
  else if (!mi || !(mi->flags & KIND_FLAGS[kind])) rv = CKR_MECHANISM_INVALID;
  if (rv == CKR_OK) {
    pthread_mutex_lock(&M.lock);
    object_t *o = object_get(hKey);
    int login = M.login;
    rv = o ? check_key(kind, mi, o) : CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK) rv = key_ref_from(o, &op->key);
    pthread_mutex_unlock(&M.lock);
    static const char *const what[] = {"C_SignInit", "C_VerifyInit", "C_EncryptInit", "C_DecryptInit"};
    /* Before a login a token's public key is visible, but only a login may use it. */
    if (rv == CKR_OK && op->key.uid && login == LOGIN_NONE) rv = CKR_USER_NOT_LOGGED_IN;
    if (rv == CKR_OK && needs_check(&op->key, login)) {
      char *token = token_copy(NULL);
      rv = rpc_check(token, KIND_NAMES[kind], op->key.uid, what[kind], M.cfg.timeout_ms);
      free(token);
    }
  }
  if (rv == CKR_OK) {
    op->mech = mi->mech;
    if (mi->hash) op->hashing = 1, sha_init(&op->hash, (sha_alg)(mi->hash - 1));
    rv = mech_params(mi, m, op);
  }
  if (rv == CKR_OK) op->active = 1;
  else if (!op->active || rv != CKR_OPERATION_ACTIVE) crypto_op_reset(op);
  if (rv != CKR_OK && rv != CKR_OPERATION_ACTIVE)
    log_msg(LOG_DEBUG, "C_%sInit(mechanism 0x%lx, key %lu): CKR 0x%lx", KIND_NAMES[kind], m->mechanism, hKey, rv);
  return rv;
}
