/* Token objects, which the gateway keeps: the requests that find, create, destroy and relabel
 * them, each answered with the objects as they now are, which refresh the table (objects.c). */
#include "token.h"

#include <stdlib.h>
#include <string.h>

CK_RV token_object_create(const char *token, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out) {
  rpc_t q;
  rpc_begin(&q, OP_CREATE_OBJECT, token, 1);
  wb_template(&q.w, t, n);
  CK_RV rv = rpc_call(&q, "C_CreateObject", M.cfg.keygen_timeout_ms, 0);
  explicit_bzero(q.w.data, q.w.len); /* an imported key's components */
  if (rv == CKR_OK) {
    pthread_mutex_lock(&M.lock);
    CK_OBJECT_HANDLE h = object_upsert_from_wire(&q.r);
    pthread_mutex_unlock(&M.lock);
    if (h == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
    else if (h == 0) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_CreateObject: the gateway sent a malformed object");
    else *out = h;
  }
  rpc_end(&q);
  return rv;
}

CK_RV token_object_destroy(CK_OBJECT_HANDLE h, const char *uid) {
  char *token = token_copy(NULL);
  rpc_t q;
  rpc_begin(&q, OP_DESTROY_OBJECT, token, 1);
  wb_str(&q.w, uid);
  CK_RV rv = rpc_call(&q, "C_DestroyObject", M.cfg.timeout_ms, 0);
  rpc_end(&q);
  free(token);
  if (rv == CKR_OK) {
    /* A key's deletion takes both its objects. */
    pthread_mutex_lock(&M.lock);
    object_t *o = object_get(h);
    if (o) object_destroy(o);
    objects_destroy_key(uid);
    pthread_mutex_unlock(&M.lock);
  }
  return rv;
}

/* A token key's label: the gateway decides and answers the key's objects as they now are. The
 * proof is the administrator's request, which each signer checks before the alias. */
CK_RV token_object_set(const char *uid, const CK_ATTRIBUTE *t, CK_ULONG n) {
  char *principal = NULL;
  uint8_t key[HMAC_SHA256_LEN];
  char *token = token_copy_keyed(NULL, &principal, key);
  rpc_t q;
  rpc_begin(&q, OP_SET_ATTRIBUTES, token, 3);
  size_t args = q.w.len;
  wb_str(&q.w, uid);
  wb_template(&q.w, t, n);
  CK_RV rv = auth_proof(&q.w, args, 2, OP_SET_ATTRIBUTES, principal, key);
  explicit_bzero(key, sizeof key);
  free(principal);
  if (rv == CKR_OK) rv = rpc_call(&q, "C_SetAttributeValue", M.cfg.timeout_ms, 0);
  uint32_t count = 0;
  int malformed = rv == CKR_OK && rd_list(&q.r, &count);
  pthread_mutex_lock(&M.lock);
  for (uint32_t i = 0; rv == CKR_OK && !malformed && i < count; i++) {
    CK_OBJECT_HANDLE h = object_upsert_from_wire(&q.r);
    if (h == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
    else if (h == 0) malformed = 1;
  }
  pthread_mutex_unlock(&M.lock);
  if (malformed) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_SetAttributeValue: the gateway sent a malformed answer");
  rpc_end(&q);
  free(token);
  return rv;
}

/* Keys of types the configuration hides (key_types) are left out of every search. */
static int key_type_shown(const object_t *o) {
  switch (object_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION)) {
    case CKK_RSA: return (M.cfg.key_types & KEY_TYPE_RSA) != 0;
    case CKK_EC: return (M.cfg.key_types & KEY_TYPE_EC) != 0;
    case CKK_EC_EDWARDS: return (M.cfg.key_types & KEY_TYPE_EC_EDWARDS) != 0;
    default: return 1;
  }
}

/* Whether a search before a login could find a token object: not one for private objects or
 * keys only a login sees (those searches need no round trip). */
static int may_find_public(const CK_ATTRIBUTE *t, CK_ULONG n) {
  for (CK_ULONG i = 0; i < n; i++) {
    CK_ULONG v = 0;
    if (t[i].ulValueLen == sizeof v && t[i].type == CKA_CLASS) memcpy(&v, t[i].pValue, sizeof v);
    if (t[i].type == CKA_CLASS && (v == CKO_PRIVATE_KEY || v == CKO_SECRET_KEY)) return 0;
    if (t[i].type == CKA_PRIVATE && t[i].ulValueLen == 1 && *(const CK_BBOOL *)t[i].pValue) return 0;
  }
  return 1;
}

CK_RV objects_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE **found_out, size_t *nfound_out) {
  CK_RV rv = CKR_OK;
  CK_OBJECT_HANDLE *found = NULL;
  size_t nfound = 0;
  char *token = token_copy(NULL);
  rpc_t q = {0};
  uint32_t count = 0;
  if (token || may_find_public(t, n)) {
    /* Token objects: the gateway matches the template against what the principal may see, or
     * without a login (no credential), against the public objects. */
    rpc_begin(&q, OP_FIND, token, 1);
    wb_template(&q.w, t, n);
    rv = rpc_call(&q, "C_FindObjectsInit", M.cfg.timeout_ms, 1);
    if (rv == CKR_OK && rd_list(&q.r, &count)) {
      log_msg(LOG_ERROR, "C_FindObjectsInit: the gateway sent a malformed answer");
      rv = CKR_DEVICE_ERROR;
    }
  }
  pthread_mutex_lock(&M.lock);
  if (rv == CKR_OK) found = malloc((count + M.nobjects + 1) * sizeof *found);
  if (rv == CKR_OK && !found) rv = CKR_HOST_MEMORY;
  for (uint32_t i = 0; rv == CKR_OK && i < count; i++) {
    CK_OBJECT_HANDLE h = object_upsert_from_wire(&q.r);
    if (h == 0) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_FindObjectsInit: the gateway sent a malformed object");
    else if (h == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
    else if (key_type_shown(M.objects[h - 1]) && object_get(h)) found[nfound++] = h; /* visible to this login */
  }
  for (size_t i = 0; rv == CKR_OK && i < M.nobjects; i++) {
    object_t *o = M.objects[i];
    if (!o->uid && object_matches(o, t, n)) found[nfound++] = o->handle;
  }
  pthread_mutex_unlock(&M.lock);
  rpc_end(&q);
  free(token);
  if (rv == CKR_OK) *found_out = found, *nfound_out = nfound;
  else free(found);
  return rv;
}
