/* C_Sign*, C_Verify*, C_Encrypt*, C_Decrypt*: check the arguments, take the session, call ops/. */
#include "api.h"

static CK_RV start(int kind, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
  CHECK_INIT();
  if (!pMechanism) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = op_start(kind, &s->op[kind], pMechanism, hKey);
  session_put(s);
  return rv;
}

CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return start(KIND_SIGN, h, m, k); }
CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return start(KIND_VERIFY, h, m, k); }
CK_RV C_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return start(KIND_ENCRYPT, h, m, k); }
CK_RV C_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return start(KIND_DECRYPT, h, m, k); }

/* C_Sign/C_Encrypt/C_Decrypt and their Final forms. `data` is NULL for Final. */
static CK_RV produce(int kind, CK_SESSION_HANDLE hSession, const uint8_t *data, size_t data_len, int final, CK_BYTE_PTR out,
                     CK_ULONG_PTR out_len) {
  CHECK_INIT();
  if (!out_len || (!final && !data && data_len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = op_produce(kind, &s->op[kind], data, data_len, final, out, out_len);
  session_put(s);
  return rv;
}

static CK_RV update(int kind, CK_SESSION_HANDLE hSession, const uint8_t *part, size_t part_len) {
  CHECK_INIT();
  if (!part && part_len) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = op_update(&s->op[kind], part, part_len);
  session_put(s);
  return rv;
}

CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  return produce(KIND_SIGN, h, pData, ulDataLen, 0, pSignature, pulSignatureLen);
}
CK_RV C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) { return update(KIND_SIGN, h, pPart, ulPartLen); }
CK_RV C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  return produce(KIND_SIGN, h, NULL, 0, 1, pSignature, pulSignatureLen);
}

CK_RV C_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(KIND_ENCRYPT, h, pData, ulDataLen, 0, pOut, pulOutLen);
}
/* RSA encryption and decryption are single-part at heart: parts are gathered and nothing comes
 * out until Final. */
static CK_RV gather(int kind, CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_ULONG_PTR pulOutLen) {
  if (!pulOutLen) return CKR_ARGUMENTS_BAD;
  CK_RV rv = update(kind, h, pPart, ulPartLen);
  if (rv == CKR_OK) *pulOutLen = 0;
  return rv;
}
CK_RV C_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  (void)pOut;
  return gather(KIND_ENCRYPT, h, pPart, ulPartLen, pulOutLen);
}
CK_RV C_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(KIND_ENCRYPT, h, NULL, 0, 1, pOut, pulOutLen);
}

CK_RV C_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pIn, CK_ULONG ulInLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  return produce(KIND_DECRYPT, h, pIn, ulInLen, 0, pData, pulDataLen);
}
CK_RV C_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  (void)pOut;
  return gather(KIND_DECRYPT, h, pPart, ulPartLen, pulOutLen);
}
CK_RV C_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) {
  return produce(KIND_DECRYPT, h, NULL, 0, 1, pOut, pulOutLen);
}

static CK_RV verify(CK_SESSION_HANDLE hSession, const uint8_t *data, size_t data_len, int final, const uint8_t *sig, size_t sig_len) {
  CHECK_INIT();
  if ((!final && !data && data_len) || (!sig && sig_len)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  CK_RV rv = op_verify(&s->op[KIND_VERIFY], data, data_len, final, sig, sig_len);
  session_put(s);
  return rv;
}

CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  return verify(h, pData, ulDataLen, 0, pSignature, ulSignatureLen);
}
CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) { return update(KIND_VERIFY, h, pPart, ulPartLen); }
CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  return verify(h, NULL, 0, 1, pSignature, ulSignatureLen);
}
