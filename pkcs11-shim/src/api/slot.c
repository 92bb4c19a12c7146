/* The slot and its token: slot, token and mechanism information, and the token functions
 * the gateway owns (initialisation, PINs) or that never happen (slot events). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pad(CK_UTF8CHAR *dst, size_t n, const char *src) {
  memset(dst, ' ', n);
  size_t len = strlen(src);
  memcpy(dst, src, len < n ? len : n);
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount) {
  (void)tokenPresent;
  CHECK_INIT();
  if (!pulCount) return CKR_ARGUMENTS_BAD;
  if (pSlotList) {
    if (*pulCount < 1) {
      *pulCount = 1;
      return CKR_BUFFER_TOO_SMALL;
    }
    pSlotList[0] = SLOT_ID;
  }
  *pulCount = 1;
  return CKR_OK;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  char desc[sizeof M.cfg.host + 32];
  snprintf(desc, sizeof desc, "mpchsm gateway %s:%s", M.cfg.host, M.cfg.port);
  pad(pInfo->slotDescription, sizeof pInfo->slotDescription, desc);
  pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "mpchsm");
  pInfo->flags = CKF_TOKEN_PRESENT;
  pInfo->hardwareVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  pInfo->firmwareVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  return CKR_OK;
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pad(pInfo->label, sizeof pInfo->label, "mpchsm");
  pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "mpchsm");
  pad(pInfo->model, sizeof pInfo->model, "threshold");
  pad(pInfo->serialNumber, sizeof pInfo->serialNumber, "0000000000000001");
  pInfo->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
  /* No PIN is ever locked, so there is no final try either: only the count of wrong PINs. */
  if (login_pin_count_low(CKU_USER)) pInfo->flags |= CKF_USER_PIN_COUNT_LOW;
  if (login_pin_count_low(CKU_SO)) pInfo->flags |= CKF_SO_PIN_COUNT_LOW;
  pthread_mutex_lock(&M.lock);
  CK_ULONG n = M.nsessions, rw = 0;
  for (size_t i = 0; i < M.nsessions; i++) rw += (M.sessions[i]->flags & CKF_RW_SESSION) != 0;
  pthread_mutex_unlock(&M.lock);
  pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
  pInfo->ulSessionCount = n;
  pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
  pInfo->ulRwSessionCount = rw;
  pInfo->ulMaxPinLen = MAX_PIN;
  pInfo->ulMinPinLen = 1;
  pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
  pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
  pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
  pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
  pInfo->hardwareVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  pInfo->firmwareVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  memset(pInfo->utcTime, ' ', sizeof pInfo->utcTime);
  return CKR_OK;
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!pulCount) return CKR_ARGUMENTS_BAD;
  if (pMechanismList && *pulCount < N_MECHANISMS) {
    *pulCount = N_MECHANISMS;
    return CKR_BUFFER_TOO_SMALL;
  }
  if (pMechanismList)
    for (size_t i = 0; i < N_MECHANISMS; i++) pMechanismList[i] = MECHANISMS[i].mech;
  *pulCount = N_MECHANISMS;
  return CKR_OK;
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  const mech_info_t *m = mech_find(type);
  if (!m) return CKR_MECHANISM_INVALID;
  pInfo->ulMinKeySize = m->min_bits;
  pInfo->ulMaxKeySize = m->max_bits;
  pInfo->flags = m->flags;
  return CKR_OK;
}

/* The token is initialised once, by `mpchsm up`; principals and their PINs are the gateway's
 * registry. The state checks come first, as PKCS#11 3.0 §5.6 orders them; a logged-in
 * principal's C_InitPIN and C_SetPIN are refused by the gateway, which records them (the
 * PINs given are never sent). */
CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel) {
  (void)pPin, (void)ulPinLen, (void)pLabel;
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  pthread_mutex_lock(&M.lock);
  int sessions = M.nsessions > 0;
  pthread_mutex_unlock(&M.lock);
  if (sessions) return CKR_SESSION_EXISTS;
  log_msg(LOG_WARN, "C_InitToken: the mpchsm token is initialised by `mpchsm up`; nothing to do here");
  return CKR_FUNCTION_NOT_SUPPORTED;
}

/* C_InitPIN needs the "R/W SO Functions" state (else CKR_USER_NOT_LOGGED_IN), C_SetPIN a
 * read/write session (else CKR_SESSION_READ_ONLY); past those, the gateway answers a login. */
static CK_RV pin_management(CK_SESSION_HANDLE hSession, const char *what, const char *caller) {
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  int rw = (s->flags & CKF_RW_SESSION) != 0;
  session_put(s);
  int login;
  char *token = token_copy(&login);
  CK_RV rv;
  if (!rw) rv = strcmp(what, "init_pin") ? CKR_SESSION_READ_ONLY : CKR_USER_NOT_LOGGED_IN;
  else if (login != LOGIN_NONE) rv = rpc_check(token, what, NULL, caller, M.cfg.timeout_ms);
  else {
    log_msg(LOG_WARN, "%s: PINs belong to mpchsm principals and are managed at the gateway", caller);
    rv = strcmp(what, "init_pin") ? CKR_FUNCTION_NOT_SUPPORTED : CKR_USER_NOT_LOGGED_IN;
  }
  free(token);
  return rv;
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  (void)pPin, (void)ulPinLen;
  return pin_management(hSession, "init_pin", "C_InitPIN");
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen) {
  (void)pOldPin, (void)ulOldLen, (void)pNewPin, (void)ulNewLen;
  return pin_management(hSession, "set_pin", "C_SetPIN");
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved) {
  (void)pSlot, (void)pReserved;
  CHECK_INIT();
  /* The one token is always present: there is never an event. */
  return flags & CKF_DONT_BLOCK ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}
