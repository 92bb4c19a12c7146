/* Session entry points: open, close, information, cancelling, and the token's one login and logout. */
#include "api.h"

#include <stdlib.h>

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession) {
  (void)pApplication, (void)Notify;
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!phSession) return CKR_ARGUMENTS_BAD;
  if (!(flags & CKF_SERIAL_SESSION)) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
  return session_open(flags, phSession);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession) {
  CHECK_INIT();
  return session_close(hSession);
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  sessions_close_all();
  return CKR_OK;
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
  CHECK_INIT();
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  int rw = (s->flags & CKF_RW_SESSION) != 0;
  pInfo->slotID = SLOT_ID;
  pInfo->flags = s->flags;
  pInfo->ulDeviceError = 0;
  if (M.login == LOGIN_SO) pInfo->state = CKS_RW_SO_FUNCTIONS;
  else if (M.login == LOGIN_USER) pInfo->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
  else pInfo->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
  pthread_mutex_unlock(&M.lock);
  session_put(s);
  return CKR_OK;
}

CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen) {
  (void)hSession, (void)pOperationState, (void)pulOperationStateLen;
  CHECK_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,
                          CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey) {
  (void)hSession, (void)pOperationState, (void)ulOperationStateLen, (void)hEncryptionKey, (void)hAuthenticationKey;
  CHECK_INIT();
  return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession) {
  (void)hSession;
  CHECK_INIT();
  return CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession) {
  (void)hSession;
  CHECK_INIT();
  return CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  for (size_t k = 0; k < N_KINDS; k++)
    if (flags & KIND_FLAGS[k]) crypto_op_reset(&s->op[k]);
  if (flags & 0x00080000UL /* CKF_FIND_OBJECTS */) {
    free(s->found);
    s->found = NULL, s->find_active = 0;
  }
  session_put(s);
  return CKR_OK;
}

/* ---- login --------------------------------------------------------------------------- */

static CK_RV login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  session_put(s);
  if (userType == CKU_CONTEXT_SPECIFIC) return CKR_OPERATION_NOT_INITIALIZED; /* no key needs it */
  if (userType != CKU_USER && userType != CKU_SO) return CKR_USER_TYPE_INVALID;
  if (!pPin) return CKR_ARGUMENTS_BAD;
  return login_start(userType, pPin, ulPinLen);
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  return login(hSession, userType, pPin, ulPinLen);
}

/* The user name is implied by the PIN (each principal has its own), so it is not needed. */
CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                  CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen) {
  (void)pUsername, (void)ulUsernameLen;
  return login(hSession, userType, pPin, ulPinLen);
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  session_put(s);
  return login_stop();
}
