/* Key-pair generation, at the gateway and for key administrators only: the request carries
 * the administrator's proof, and the answer's two objects join the table. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

CK_RV keygen(const session_t *s, const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
             CK_ULONG npriv, CK_OBJECT_HANDLE *ph_pub, CK_OBJECT_HANDLE *ph_priv) {
  const mech_info_t *mi = mech_find(m->mechanism);
  int login;
  char *principal = NULL;
  uint8_t key[HMAC_SHA256_LEN];
  char *token = token_copy_keyed(&login, &principal, key);
  CK_RV rv = CKR_OK;
  if (!mi || !(mi->flags & CKF_GENERATE_KEY_PAIR)) rv = CKR_MECHANISM_INVALID;
  else if (m->ulParameterLen) rv = CKR_MECHANISM_PARAM_INVALID;
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
    wb_template(&q.w, pub, npub);
    wb_template(&q.w, priv, npriv);
    rv = auth_proof(&q.w, args, 3, OP_GENERATE_KEY_PAIR, principal, key);
    if (rv == CKR_OK) {
      log_msg(LOG_INFO, "C_GenerateKeyPair: generating (mechanism 0x%lx); this takes a while for RSA", mi->mech);
      rv = rpc_call(&q, "C_GenerateKeyPair", M.cfg.keygen_timeout_ms, 0);
    }
    if (rv == CKR_OK) {
      pthread_mutex_lock(&M.lock);
      CK_OBJECT_HANDLE hpub = object_upsert_from_wire(&q.r);
      CK_OBJECT_HANDLE hpriv = hpub && hpub != (CK_OBJECT_HANDLE)-1 ? object_upsert_from_wire(&q.r) : hpub;
      pthread_mutex_unlock(&M.lock);
      if (hpub == (CK_OBJECT_HANDLE)-1 || hpriv == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
      else if (!hpub || !hpriv) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_GenerateKeyPair: the gateway sent a malformed answer");
      else *ph_pub = hpub, *ph_priv = hpriv;
    }
    rpc_end(&q);
  }
  explicit_bzero(key, sizeof key);
  free(principal);
  free(token);
  return rv;
}
