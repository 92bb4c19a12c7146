/* Object entry points: create, copy, destroy, attributes, search. Session objects stay in the
 * module (token/objects.c); token objects are the gateway's (token/token-objects.c). */
#include "api.h"

#include <stdlib.h>
#include <string.h>

static int template_ok(const CK_ATTRIBUTE *t, CK_ULONG n) {
  if (n && !t) return 0;
  for (CK_ULONG i = 0; i < n; i++)
    if (!t[i].pValue && t[i].ulValueLen) return 0;
  return 1;
}

static const CK_ATTRIBUTE *template_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type) {
  for (CK_ULONG i = 0; i < n; i++)
    if (t[i].type == type) return &t[i];
  return NULL;
}

/* A new object from a template (C_CreateObject, C_CopyObject): a token object is the gateway's,
 * and needs a read/write session and a login; a private session object needs a login. */
static CK_RV create(const session_t *s, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out) {
  const CK_ATTRIBUTE *tok = template_find(t, n, CKA_TOKEN);
  int token_object = tok && tok->ulValueLen == 1 && *(CK_BBOOL *)tok->pValue;
  const CK_ATTRIBUTE *priv = template_find(t, n, CKA_PRIVATE);
  int private_object = priv && priv->ulValueLen == 1 && *(CK_BBOOL *)priv->pValue;
  int login;
  char *token = token_copy(&login);
  CK_RV rv;
  if (token_object && !(s->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
  else if ((token_object || private_object) && login == LOGIN_NONE) rv = CKR_USER_NOT_LOGGED_IN;
  else if (token_object) rv = token_object_create(token, t, n, out);
  else {
    pthread_mutex_lock(&M.lock);
    rv = object_create_session(s->handle, t, n, out);
    pthread_mutex_unlock(&M.lock);
  }
  free(token);
  return rv;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject) {
  CHECK_INIT();
  if (!phObject || !template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = create(s, pTemplate, ulCount, phObject);
  session_put(s);
  return rv;
}

/* Token keys and certificates are not copyable (CKA_COPYABLE false: CKR_ACTION_PROHIBITED, as
 * PKCS#11 3.0 §5.7 says); session objects are, into the session or (CKA_TOKEN) onto the token. */
CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                   CK_OBJECT_HANDLE_PTR phNewObject) {
  CHECK_INIT();
  if (!phNewObject || !template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_ATTRIBUTE *t = NULL;
  CK_ULONG n = 0;
  pthread_mutex_lock(&M.lock);
  object_t *o = object_get(hObject);
  CK_RV rv;
  if (!o) rv = CKR_OBJECT_HANDLE_INVALID;
  else if (!object_bool(o, CKA_COPYABLE)) rv = CKR_ACTION_PROHIBITED;
  else rv = object_copy_template(o, pTemplate, ulCount, &t, &n);
  pthread_mutex_unlock(&M.lock);
  if (rv == CKR_OK) rv = create(s, t, n, phNewObject);
  template_free(t, n);
  session_put(s);
  return rv;
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  object_t *o = object_get(hObject);
  CK_RV rv = CKR_OK;
  char *uid = NULL;
  if (!o) rv = CKR_OBJECT_HANDLE_INVALID;
  else if (!o->uid) object_destroy(o);
  else if (!(s->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
  else if (M.login == LOGIN_NONE) rv = CKR_USER_NOT_LOGGED_IN; /* a public token object, seen before a login */
  else if (!(uid = strdup(o->uid))) rv = CKR_HOST_MEMORY;
  pthread_mutex_unlock(&M.lock);
  if (uid) rv = token_object_destroy(hObject, uid);
  free(uid);
  session_put(s);
  return rv;
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize) {
  CHECK_INIT();
  if (!pulSize) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  CK_RV rv = object_get(hObject) ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
  pthread_mutex_unlock(&M.lock);
  if (rv == CKR_OK) *pulSize = CK_UNAVAILABLE_INFORMATION; /* objects take no token memory */
  session_put(s);
  return rv;
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  CHECK_INIT();
  if (ulCount && !pTemplate) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  object_t *o = object_get(hObject);
  CK_RV rv = o ? object_read_attributes(o, pTemplate, ulCount) : CKR_OBJECT_HANDLE_INVALID;
  pthread_mutex_unlock(&M.lock);
  session_put(s);
  return rv;
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  CHECK_INIT();
  if (!template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  object_t *o = object_get(hObject);
  CK_RV rv = CKR_OK;
  char *uid = NULL;
  if (!o) rv = CKR_OBJECT_HANDLE_INVALID;
  else if (!o->uid) rv = object_set_session(o, pTemplate, ulCount);
  else if (!object_bool(o, CKA_MODIFIABLE)) rv = CKR_ACTION_PROHIBITED;
  else if (!(s->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
  else if (M.login == LOGIN_NONE) rv = CKR_USER_NOT_LOGGED_IN;
  else if (!(uid = strdup(o->uid))) rv = CKR_HOST_MEMORY;
  pthread_mutex_unlock(&M.lock);
  if (uid) rv = token_object_set(uid, pTemplate, ulCount);
  free(uid);
  session_put(s);
  return rv;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  CHECK_INIT();
  if (!template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = CKR_OPERATION_ACTIVE;
  if (!s->find_active) rv = objects_find(pTemplate, ulCount, &s->found, &s->nfound);
  if (rv == CKR_OK) s->find_pos = 0, s->find_active = 1;
  session_put(s);
  return rv;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount) {
  CHECK_INIT();
  if (!phObject || !pulObjectCount) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = CKR_OK;
  if (!s->find_active) rv = CKR_OPERATION_NOT_INITIALIZED;
  else {
    CK_ULONG n = 0;
    while (n < ulMaxObjectCount && s->find_pos < s->nfound) phObject[n++] = s->found[s->find_pos++];
    *pulObjectCount = n;
  }
  session_put(s);
  return rv;
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = s->find_active ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
  free(s->found);
  s->found = NULL, s->nfound = 0, s->find_active = 0;
  session_put(s);
  return rv;
}
