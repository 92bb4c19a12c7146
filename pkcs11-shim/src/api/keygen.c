/* C_GenerateKeyPair: the arguments are checked here, the key is made at the gateway (ops/keygen.c). */
#include "api.h"

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPub, CK_ULONG nPub,
                        CK_ATTRIBUTE_PTR pPriv, CK_ULONG nPriv, CK_OBJECT_HANDLE_PTR phPub, CK_OBJECT_HANDLE_PTR phPriv) {
  CHECK_INIT();
  if (!pMechanism || !phPub || !phPriv || (nPub && !pPub) || (nPriv && !pPriv)) return CKR_ARGUMENTS_BAD;
  for (CK_ULONG i = 0; i < nPub; i++)
    if (!pPub[i].pValue && pPub[i].ulValueLen) return CKR_ARGUMENTS_BAD;
  for (CK_ULONG i = 0; i < nPriv; i++)
    if (!pPriv[i].pValue && pPriv[i].ulValueLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = keygen(s, pMechanism, pPub, nPub, pPriv, nPriv, phPub, phPriv);
  session_put(s);
  return rv;
}
