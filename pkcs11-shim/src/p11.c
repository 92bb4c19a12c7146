/* PKCS#11 entry points: library, slot and token, sessions, login, objects.
 *
 * Concurrency: M.lock guards the module's tables and is never held across a request to the
 * gateway, so sessions sign concurrently. Each session has an op_lock serialising calls on
 * that one session, and a reference count so C_CloseSession from another thread cannot free
 * it under a running call.
 *
 * Fork: the state belongs to the process that called C_Initialize. In a child every function
 * answers CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize, which starts afresh
 * without touching the parent's connections or locks. */
#include "module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

module_t M;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

#define SLOT_ID 0
#define MAX_PIN 1024

#define CHECK_INIT()                                           \
  do {                                                         \
    if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED; \
  } while (0)

static void pad(CK_UTF8CHAR *dst, size_t n, const char *src) {
  memset(dst, ' ', n);
  size_t len = strlen(src);
  memcpy(dst, src, len < n ? len : n);
}

/* ---- library ------------------------------------------------------------------------- */

/* Ends the login (M.lock held, or at C_Finalize): the request key is wiped, not just
 * forgotten. Returns the credential, to announce a logout for and free. */
static char *login_end(void) {
  char *t = M.token;
  M.token = NULL;
  M.login = LOGIN_NONE;
  free(M.principal);
  M.principal = NULL;
  explicit_bzero(M.request_key, sizeof M.request_key);
  return t;
}

static void state_free(void) {
  for (size_t i = 0; i < M.nsessions; i++) {
    session_t *s = M.sessions[i];
    crypto_op_t *ops[] = {&s->sign, &s->verify, &s->encrypt, &s->decrypt, &s->digest};
    for (size_t j = 0; j < 5; j++) crypto_op_reset(ops[j]);
    free(s->found);
    free(s);
  }
  free(M.sessions);
  objects_free_all();
  free(login_end());
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
  if (pInitArgs) {
    CK_C_INITIALIZE_ARGS *a = pInitArgs;
    if (a->pReserved) return CKR_ARGUMENTS_BAD;
    int some = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
    int all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
    if (some && !all) return CKR_ARGUMENTS_BAD;
    /* We lock with pthreads; an application that allows only its own mutexes gets told so. */
    if (all && !(a->flags & CKF_OS_LOCKING_OK)) return CKR_CANT_LOCK;
  }
  pthread_mutex_lock(&init_lock);
  pid_t pid = getpid();
  if (M.initialized && M.pid == pid) {
    pthread_mutex_unlock(&init_lock);
    return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  }
  if (M.initialized) {
    /* A forked child: the parent's state (and its socket streams) are not ours. Forget them
     * without freeing: another thread of the parent may have held a lock at the fork. The
     * parent's request key is wiped: the child must log in to MAC requests of its own. */
    transport_shutdown(1);
    explicit_bzero(M.request_key, sizeof M.request_key);
    memset(&M, 0, sizeof M);
  }
  config_t *c = &M.cfg;
  int bad = config_load(c);
  const char *fallback = getenv("MPCHSM_PKCS11_LOG");
  if (c->log_path[0]) {
    if (log_open(c->log_path, c->log_debug)) fprintf(stderr, "mpchsm-pkcs11: cannot open the log file %s\n", c->log_path);
  } else if (fallback && *fallback) {
    log_open(fallback, 0);
  }
  if (bad) {
    log_msg(LOG_ERROR, "C_Initialize: configuration: %s", c->error);
    log_close();
    pthread_mutex_unlock(&init_lock);
    return CKR_GENERAL_ERROR;
  }
  char err[512];
  if (transport_init(c, err, sizeof err)) {
    log_msg(LOG_ERROR, "C_Initialize: %s", err);
    log_close();
    pthread_mutex_unlock(&init_lock);
    return CKR_GENERAL_ERROR;
  }
  pthread_mutex_init(&M.lock, NULL);
  M.pid = pid;
  M.next_session = 1;
  M.initialized = 1;
  log_msg(LOG_INFO, "initialised: gateway %s:%s%s", c->host, c->port, c->tls ? " (TLS)" : "");
  pthread_mutex_unlock(&init_lock);
  return CKR_OK;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved) {
  if (pReserved) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&init_lock);
  if (!M.initialized || M.pid != getpid()) {
    pthread_mutex_unlock(&init_lock);
    return CKR_CRYPTOKI_NOT_INITIALIZED;
  }
  if (M.token) {
    rpc_t q;
    rpc_begin(&q, OP_LOGOUT, M.token, 0);
    rpc_call(&q, "C_Finalize (logout)", 2000, 1);
    rpc_end(&q);
  }
  transport_shutdown(0);
  state_free();
  log_msg(LOG_DEBUG, "finalised");
  log_close();
  memset(&M, 0, sizeof M);
  pthread_mutex_unlock(&init_lock);
  return CKR_OK;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
  CHECK_INIT();
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion = (CK_VERSION){2, 40};
  pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "mpchsm");
  pad(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "mpchsm threshold HSM");
  pInfo->libraryVersion = (CK_VERSION){MPCHSM_VERSION_MAJOR, MPCHSM_VERSION_MINOR};
  return CKR_OK;
}

/* ---- slot and token ------------------------------------------------------------------ */

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
  free(token);
  if (!rw) return strcmp(what, "init_pin") ? CKR_SESSION_READ_ONLY : CKR_USER_NOT_LOGGED_IN;
  if (login != LOGIN_NONE) return rpc_check(what, NULL, caller);
  log_msg(LOG_WARN, "%s: PINs belong to mpchsm principals and are managed at the gateway", caller);
  return strcmp(what, "init_pin") ? CKR_FUNCTION_NOT_SUPPORTED : CKR_USER_NOT_LOGGED_IN;
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

/* ---- sessions ------------------------------------------------------------------------ */

session_t *session_get(CK_SESSION_HANDLE h) {
  session_t *s = NULL;
  pthread_mutex_lock(&M.lock);
  for (size_t i = 0; i < M.nsessions && !s; i++)
    if (M.sessions[i]->handle == h) s = M.sessions[i];
  if (s) s->refs++;
  pthread_mutex_unlock(&M.lock);
  if (s) pthread_mutex_lock(&s->op_lock);
  return s;
}

static void session_free(session_t *s) {
  crypto_op_t *ops[] = {&s->sign, &s->verify, &s->encrypt, &s->decrypt, &s->digest};
  for (size_t j = 0; j < 5; j++) crypto_op_reset(ops[j]);
  free(s->found);
  pthread_mutex_destroy(&s->op_lock);
  free(s);
}

void session_put(session_t *s) {
  pthread_mutex_unlock(&s->op_lock);
  pthread_mutex_lock(&M.lock);
  int gone = --s->refs == 0 && s->closed;
  pthread_mutex_unlock(&M.lock);
  if (gone) session_free(s);
}

char *token_copy_keyed(int *login, char **principal, uint8_t key[HMAC_SHA256_LEN]) {
  pthread_mutex_lock(&M.lock);
  char *t = M.token ? strdup(M.token) : NULL;
  char *p = t && principal ? strdup(M.principal) : NULL;
  if (principal && !p) free(t), t = NULL; /* out of memory: as if logged out, as token_copy */
  if (t && key) memcpy(key, M.request_key, sizeof M.request_key);
  if (login) *login = t ? M.login : LOGIN_NONE;
  pthread_mutex_unlock(&M.lock);
  if (principal) *principal = p;
  return t;
}

char *token_copy(int *login) { return token_copy_keyed(login, NULL, NULL); }

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession) {
  (void)pApplication, (void)Notify;
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  if (!phSession) return CKR_ARGUMENTS_BAD;
  if (!(flags & CKF_SERIAL_SESSION)) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
  session_t *s = calloc(1, sizeof *s);
  if (!s) return CKR_HOST_MEMORY;
  pthread_mutex_init(&s->op_lock, NULL);
  s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
  pthread_mutex_lock(&M.lock);
  CK_RV rv = CKR_OK;
  if (M.login == LOGIN_SO && !(flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
  if (rv == CKR_OK && M.nsessions == M.sessions_cap) {
    size_t cap = M.sessions_cap ? M.sessions_cap * 2 : 16;
    session_t **p = realloc(M.sessions, cap * sizeof *p);
    if (!p) rv = CKR_HOST_MEMORY;
    else M.sessions = p, M.sessions_cap = cap;
  }
  if (rv == CKR_OK) {
    s->handle = M.next_session++;
    M.sessions[M.nsessions++] = s;
    *phSession = s->handle;
  }
  pthread_mutex_unlock(&M.lock);
  if (rv != CKR_OK) session_free(s);
  return rv;
}

/* Removes a session from the table (M.lock held); frees it once no call is using it. The
 * last session's closing logs the application out (PKCS#11 §5.6). Returns the token to
 * announce a logout for, if any. */
static char *session_remove(size_t i, session_t **to_free) {
  session_t *s = M.sessions[i];
  M.sessions[i] = M.sessions[--M.nsessions];
  objects_drop_session(s->handle);
  s->closed = 1;
  *to_free = s->refs == 0 ? s : NULL;
  return M.nsessions == 0 && M.token ? login_end() : NULL;
}

static void announce_logout(char *token) {
  if (!token) return;
  rpc_t q;
  rpc_begin(&q, OP_LOGOUT, token, 0);
  rpc_call(&q, "logout", 2000, 1);
  rpc_end(&q);
  free(token);
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession) {
  CHECK_INIT();
  pthread_mutex_lock(&M.lock);
  session_t *to_free = NULL;
  char *logout = NULL;
  CK_RV rv = CKR_SESSION_HANDLE_INVALID;
  for (size_t i = 0; i < M.nsessions; i++)
    if (M.sessions[i]->handle == hSession) {
      logout = session_remove(i, &to_free);
      rv = CKR_OK;
      break;
    }
  pthread_mutex_unlock(&M.lock);
  if (to_free) session_free(to_free);
  announce_logout(logout);
  return rv;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID) {
  CHECK_INIT();
  if (slotID != SLOT_ID) return CKR_SLOT_ID_INVALID;
  char *logout = NULL;
  for (;;) {
    pthread_mutex_lock(&M.lock);
    if (M.nsessions == 0) {
      pthread_mutex_unlock(&M.lock);
      break;
    }
    session_t *to_free = NULL;
    char *t = session_remove(M.nsessions - 1, &to_free);
    if (t) logout = t;
    pthread_mutex_unlock(&M.lock);
    if (to_free) session_free(to_free);
  }
  announce_logout(logout);
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
  if (flags & CKF_SIGN) crypto_op_reset(&s->sign);
  if (flags & CKF_VERIFY) crypto_op_reset(&s->verify);
  if (flags & CKF_ENCRYPT) crypto_op_reset(&s->encrypt);
  if (flags & CKF_DECRYPT) crypto_op_reset(&s->decrypt);
  if (flags & CKF_DIGEST) crypto_op_reset(&s->digest);
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
  pthread_mutex_lock(&M.lock);
  CK_RV rv = CKR_OK;
  int want = userType == CKU_SO ? LOGIN_SO : LOGIN_USER;
  if (M.login == want) rv = CKR_USER_ALREADY_LOGGED_IN;
  else if (M.login != LOGIN_NONE) rv = CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
  else if (want == LOGIN_SO)
    for (size_t i = 0; i < M.nsessions; i++)
      if (!(M.sessions[i]->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY_EXISTS;
  pthread_mutex_unlock(&M.lock);
  if (rv != CKR_OK) return rv;
  if (ulPinLen == 0 || ulPinLen > MAX_PIN) return CKR_PIN_INCORRECT;

  /* The PIN stays here: the gateway gets a key derived from it, the signers' checks need
   * the other (auth.c). */
  uint8_t login_key[HMAC_SHA256_LEN], request_key[HMAC_SHA256_LEN];
  rv = auth_derive(pPin, ulPinLen, login_key, request_key);
  if (rv != CKR_OK) return rv;
  rpc_t q;
  rpc_begin(&q, OP_LOGIN, NULL, 2);
  wb_uint(&q.w, userType);
  wb_bytes(&q.w, login_key, sizeof login_key);
  explicit_bzero(login_key, sizeof login_key);
  rv = rpc_call(&q, "C_Login", M.cfg.timeout_ms, 1);
  char *token = NULL, *principal = NULL;
  if (rv == CKR_OK) {
    token = rd_strdup(&q.r);
    principal = rd_strdup(&q.r);
    if (!token || !principal || !*token) {
      log_msg(LOG_ERROR, "C_Login: the gateway sent a malformed answer");
      rv = CKR_DEVICE_ERROR;
    }
  }
  /* The request held the login key: wipe it before the buffer goes back to the allocator. */
  explicit_bzero(q.w.data, q.w.len);
  rpc_end(&q);
  if (rv == CKR_OK) {
    pthread_mutex_lock(&M.lock);
    if (M.login != LOGIN_NONE) {
      rv = M.login == want ? CKR_USER_ALREADY_LOGGED_IN : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    } else {
      M.login = want;
      M.token = token, M.principal = principal;
      memcpy(M.request_key, request_key, sizeof request_key);
      token = principal = NULL;
      /* Under the lock: a logout frees M.principal. */
      log_msg(LOG_INFO, "logged in as %s (%s)", M.principal, want == LOGIN_SO ? "CKU_SO" : "CKU_USER");
    }
    pthread_mutex_unlock(&M.lock);
  }
  explicit_bzero(request_key, sizeof request_key);
  announce_logout(token); /* a concurrent login won the race: retire the credential we got */
  free(principal);
  return rv;
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
  pthread_mutex_lock(&M.lock);
  char *t = login_end();
  CK_RV rv = t ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
  pthread_mutex_unlock(&M.lock);
  announce_logout(t);
  return rv;
}

/* ---- objects ------------------------------------------------------------------------- */

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

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject) {
  CHECK_INIT();
  if (!phObject || !template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  const CK_ATTRIBUTE *tok = template_find(pTemplate, ulCount, CKA_TOKEN);
  int token_object = tok && tok->ulValueLen == 1 && *(CK_BBOOL *)tok->pValue;
  const CK_ATTRIBUTE *priv = template_find(pTemplate, ulCount, CKA_PRIVATE);
  int private_object = priv && priv->ulValueLen == 1 && *(CK_BBOOL *)priv->pValue;
  int login;
  char *token = token_copy(&login);
  CK_RV rv = CKR_OK;
  if (token_object && !(s->flags & CKF_RW_SESSION)) rv = CKR_SESSION_READ_ONLY;
  else if ((token_object || private_object) && login == LOGIN_NONE) rv = CKR_USER_NOT_LOGGED_IN;
  else if (!token_object) {
    pthread_mutex_lock(&M.lock);
    rv = object_create_session(hSession, pTemplate, ulCount, phObject);
    pthread_mutex_unlock(&M.lock);
  } else {
    rpc_t q;
    rpc_begin(&q, OP_CREATE_OBJECT, token, 1);
    wb_template(&q.w, pTemplate, ulCount);
    rv = rpc_call(&q, "C_CreateObject", M.cfg.keygen_timeout_ms, 0);
    explicit_bzero(q.w.data, q.w.len); /* an imported key's components */
    if (rv == CKR_OK) {
      pthread_mutex_lock(&M.lock);
      CK_OBJECT_HANDLE h = object_upsert_from_wire(&q.r);
      pthread_mutex_unlock(&M.lock);
      if (h == (CK_OBJECT_HANDLE)-1) rv = CKR_HOST_MEMORY;
      else if (h == 0) rv = CKR_DEVICE_ERROR, log_msg(LOG_ERROR, "C_CreateObject: the gateway sent a malformed object");
      else *phObject = h;
    }
    rpc_end(&q);
  }
  free(token);
  session_put(s);
  return rv;
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                   CK_OBJECT_HANDLE_PTR phNewObject) {
  (void)pTemplate, (void)ulCount, (void)phNewObject;
  CHECK_INIT();
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  pthread_mutex_lock(&M.lock);
  CK_RV rv = object_get(hObject) ? CKR_ACTION_PROHIBITED : CKR_OBJECT_HANDLE_INVALID;
  pthread_mutex_unlock(&M.lock);
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
  else if (!(uid = strdup(o->uid))) rv = CKR_HOST_MEMORY;
  pthread_mutex_unlock(&M.lock);
  if (uid) {
    char *token = token_copy(NULL);
    rpc_t q;
    rpc_begin(&q, OP_DESTROY_OBJECT, token, 1);
    wb_str(&q.w, uid);
    rv = rpc_call(&q, "C_DestroyObject", M.cfg.timeout_ms, 0);
    rpc_end(&q);
    free(token);
    if (rv == CKR_OK) {
      /* A key's deletion takes both its objects. */
      pthread_mutex_lock(&M.lock);
      if ((o = object_get(hObject))) object_destroy(o);
      objects_destroy_key(uid);
      pthread_mutex_unlock(&M.lock);
    }
    free(uid);
  }
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
  else if (!(uid = strdup(o->uid))) rv = CKR_HOST_MEMORY;
  pthread_mutex_unlock(&M.lock);
  if (uid) {
    /* A token key's label: the gateway decides and answers the key's objects as they now are.
     * The proof is the administrator's request, which each signer checks before the alias. */
    char *principal = NULL;
    uint8_t key[HMAC_SHA256_LEN];
    char *token = token_copy_keyed(NULL, &principal, key);
    rpc_t q;
    rpc_begin(&q, OP_SET_ATTRIBUTES, token, 3);
    size_t args = q.w.len;
    wb_str(&q.w, uid);
    wb_template(&q.w, pTemplate, ulCount);
    rv = auth_proof(&q.w, args, 2, OP_SET_ATTRIBUTES, principal, key);
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
    free(uid);
  }
  session_put(s);
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

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  CHECK_INIT();
  if (!template_ok(pTemplate, ulCount)) return CKR_ARGUMENTS_BAD;
  session_t *s = session_get(hSession);
  if (!s) return CKR_SESSION_HANDLE_INVALID;
  if (s->find_active) {
    session_put(s);
    return CKR_OPERATION_ACTIVE;
  }
  CK_RV rv = CKR_OK;
  CK_OBJECT_HANDLE *found = NULL;
  size_t nfound = 0;
  char *token = token_copy(NULL);
  rpc_t q = {0};
  uint32_t count = 0;
  if (token) {
    /* Token objects: the gateway matches the template against what the principal may see. */
    rpc_begin(&q, OP_FIND, token, 1);
    wb_template(&q.w, pTemplate, ulCount);
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
    else if (key_type_shown(M.objects[h - 1])) found[nfound++] = h;
  }
  for (size_t i = 0; rv == CKR_OK && i < M.nobjects; i++) {
    object_t *o = M.objects[i];
    if (!o->uid && object_matches(o, pTemplate, ulCount)) found[nfound++] = o->handle;
  }
  pthread_mutex_unlock(&M.lock);
  rpc_end(&q);
  free(token);
  if (rv == CKR_OK) {
    s->found = found, s->nfound = nfound, s->find_pos = 0, s->find_active = 1;
  } else {
    free(found);
  }
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

/* ---- function lists and interfaces --------------------------------------------------- */

#define MPCHSM_ENTRY(name, args) name,
static CK_FUNCTION_LIST functions_2_40 = {{2, 40}, MPCHSM_FUNCTIONS_2_40(MPCHSM_ENTRY)};
static CK_FUNCTION_LIST_3_0 functions_3_0 = {{3, 0}, MPCHSM_FUNCTIONS_2_40(MPCHSM_ENTRY) MPCHSM_FUNCTIONS_3_0(MPCHSM_ENTRY)};
static CK_INTERFACE interfaces[] = {
    {(CK_CHAR *)"PKCS 11", &functions_3_0, CKF_INTERFACE_FORK_SAFE},
    {(CK_CHAR *)"PKCS 11", &functions_2_40, CKF_INTERFACE_FORK_SAFE},
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

/* No I/O here: an application may ask for the list before anything is configured. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (!ppFunctionList) return CKR_ARGUMENTS_BAD;
  *ppFunctionList = &functions_2_40;
  return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (!pulCount) return CKR_ARGUMENTS_BAD;
  if (pInterfacesList) {
    if (*pulCount < N_INTERFACES) {
      *pulCount = N_INTERFACES;
      return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(pInterfacesList, interfaces, sizeof interfaces);
  }
  *pulCount = N_INTERFACES;
  return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (!ppInterface) return CKR_ARGUMENTS_BAD;
  for (size_t i = 0; i < N_INTERFACES; i++) {
    const CK_VERSION *v = interfaces[i].pFunctionList;
    if (pInterfaceName && strcmp((const char *)pInterfaceName, (const char *)interfaces[i].pInterfaceName)) continue;
    if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor)) continue;
    if ((interfaces[i].flags & flags) != flags) continue;
    *ppInterface = &interfaces[i];
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}
