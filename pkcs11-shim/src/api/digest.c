/* C_Digest* and C_GenerateRandom/C_SeedRandom: answered here, without the gateway. */
#include "api.h"

#include <errno.h>
#include <string.h>

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
  CHECK_INIT();
  if (!pMechanism) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = digest_start(&s->op[KIND_DIGEST], pMechanism);
  session_put(s);
  return rv;
}

static CK_RV digest(CK_SESSION_HANDLE hSession, const uint8_t *data, size_t len, int final, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  CHECK_INIT();
  if (!out_len || (!final && !data && len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = digest_out(&s->op[KIND_DIGEST], data, len, final, out, out_len);
  session_put(s);
  return rv;
}

CK_RV C_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  return digest(h, pData, ulDataLen, 0, pDigest, pulDigestLen);
}
CK_RV C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  CHECK_INIT();
  if (!pPart && ulPartLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = digest_update(&s->op[KIND_DIGEST], pPart, ulPartLen);
  session_put(s);
  return rv;
}
CK_RV C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  return digest(h, NULL, 0, 1, pDigest, pulDigestLen);
}
CK_RV C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE hKey) {
  (void)hKey;
  CHECK_INIT();
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = digest_key(&s->op[KIND_DIGEST]);
  session_put(s);
  return rv;
}

/* ---- random -------------------------------------------------------------------------- */

/* The kernel's generator: as good as any the gateway could offer, without a round trip. */
CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR pRandom, CK_ULONG ulLen) {
  CHECK_INIT();
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

/* The kernel's generator takes no seed from the module. PKCS#11 3.0 ranks that answer below the
 * call's own errors, so a bad argument or session is reported as such first (as C_GenerateRandom
 * checks them). */
CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
  CHECK_INIT();
  if (!pSeed && ulSeedLen) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(h);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  session_put(s);
  return CKR_RANDOM_SEED_NOT_SUPPORTED;
}
