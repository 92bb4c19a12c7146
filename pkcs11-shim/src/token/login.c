/* The login: C_Login's exchange (the PIN KDF parameters over rpc, the keys from auth.c, the
 * gateway's credential), logout, and copies of the credential and request key for requests. */
#include "token.h"

#include <stdlib.h>
#include <string.h>

char *login_end(void) {
  char *t = M.token;
  M.token = NULL;
  M.login = LOGIN_NONE;
  free(M.principal);
  M.principal = NULL;
  explicit_bzero(M.request_key, sizeof M.request_key);
  explicit_bzero(M.login_key, sizeof M.login_key);
  return t;
}

void logout_announce(char *token) {
  if (!token) return;
  rpc_t q;
  rpc_begin(&q, OP_LOGOUT, token, 0);
  rpc_call(&q, "logout", 2000, 1);
  rpc_end(&q);
  free(token);
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

/* The salt and iteration count the gateway derives PIN keys with. */
static CK_RV kdf_params(uint8_t salt[AUTH_SALT_MAX], size_t *salt_len, uint32_t *iterations) {
  rpc_t q;
  rpc_begin(&q, OP_PIN_KDF, NULL, 0);
  CK_RV rv = rpc_call(&q, "C_Login (PIN KDF)", M.cfg.timeout_ms, 1);
  const uint8_t *p;
  uint64_t c;
  if (rv == CKR_OK) {
    if (rd_bytes(&q.r, &p, salt_len) || *salt_len < AUTH_SALT_MIN || *salt_len > AUTH_SALT_MAX || rd_uint(&q.r, &c) ||
        c < AUTH_ITERATIONS_MIN || c > AUTH_ITERATIONS_MAX) {
      log_msg(LOG_ERROR, "C_Login: the gateway sent malformed PIN KDF parameters");
      rv = CKR_DEVICE_ERROR;
    } else {
      memcpy(salt, p, *salt_len);
      *iterations = (uint32_t)c;
    }
  }
  rpc_end(&q);
  return rv;
}

/* The gateway keeps no count of wrong PINs and locks no PIN (each principal's PIN is its own and
 * names it, so a wrong one names no one): what the module can say honestly is what it saw itself.
 * Called with each login's outcome. */
static CK_RV count_pin(CK_USER_TYPE userType, CK_RV rv) {
  pthread_mutex_lock(&M.lock);
  unsigned long *n = &M.wrong_pins[userType == CKU_SO];
  if (rv == CKR_PIN_INCORRECT) ++*n;
  else if (rv == CKR_OK) *n = 0;
  pthread_mutex_unlock(&M.lock);
  return rv;
}

int login_pin_count_low(CK_USER_TYPE userType) {
  pthread_mutex_lock(&M.lock);
  int low = M.wrong_pins[userType == CKU_SO] > 0;
  pthread_mutex_unlock(&M.lock);
  return low;
}

static CK_RV login_exchange(CK_USER_TYPE userType, const CK_UTF8CHAR *pin, CK_ULONG pin_len);

CK_RV login_start(CK_USER_TYPE userType, const CK_UTF8CHAR *pin, CK_ULONG pin_len) {
  return count_pin(userType, login_exchange(userType, pin, pin_len));
}

/* OP_LOGIN with a key derived from the PIN: the gateway's credential and principal, or a CKR_*. */
static CK_RV login_with_key(CK_USER_TYPE userType, const uint8_t login_key[HMAC_SHA256_LEN], char **token, char **principal) {
  rpc_t q;
  rpc_begin(&q, OP_LOGIN, NULL, 2);
  wb_uint(&q.w, userType);
  wb_bytes(&q.w, login_key, HMAC_SHA256_LEN);
  CK_RV rv = rpc_call(&q, "C_Login", M.cfg.timeout_ms, 1);
  if (rv == CKR_OK) {
    *token = rd_strdup(&q.r);
    *principal = rd_strdup(&q.r);
    if (!*token || !*principal || !**token) {
      log_msg(LOG_ERROR, "C_Login: the gateway sent a malformed answer");
      free(*token), free(*principal);
      *token = *principal = NULL;
      rv = CKR_DEVICE_ERROR;
    }
  }
  /* The request held the login key: wipe it before the buffer goes back to the allocator. */
  explicit_bzero(q.w.data, q.w.len);
  rpc_end(&q);
  return rv;
}

static CK_RV login_exchange(CK_USER_TYPE userType, const CK_UTF8CHAR *pin, CK_ULONG pin_len) {
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
  if (pin_len == 0 || pin_len > MAX_PIN) return CKR_PIN_INCORRECT;

  /* The PIN stays here: the gateway gets a key derived from it, the signers' checks need
   * the other (auth.c). */
  uint8_t salt[AUTH_SALT_MAX], login_key[HMAC_SHA256_LEN], request_key[HMAC_SHA256_LEN];
  size_t salt_len;
  uint32_t iterations;
  rv = kdf_params(salt, &salt_len, &iterations);
  if (rv != CKR_OK) return rv;
  auth_derive(pin, pin_len, salt, salt_len, iterations, login_key, request_key);
  char *token = NULL, *principal = NULL;
  rv = login_with_key(userType, login_key, &token, &principal);
  if (rv == CKR_OK) {
    pthread_mutex_lock(&M.lock);
    if (M.login != LOGIN_NONE) {
      rv = M.login == want ? CKR_USER_ALREADY_LOGGED_IN : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    } else {
      M.login = want;
      M.token = token, M.principal = principal;
      memcpy(M.request_key, request_key, sizeof request_key);
      memcpy(M.login_key, login_key, sizeof login_key);
      token = principal = NULL;
      /* Under the lock: a logout frees M.principal. */
      log_msg(LOG_INFO, "logged in as %s (%s)", M.principal, want == LOGIN_SO ? "CKU_SO" : "CKU_USER");
    }
    pthread_mutex_unlock(&M.lock);
  }
  explicit_bzero(request_key, sizeof request_key);
  explicit_bzero(login_key, sizeof login_key);
  logout_announce(token); /* a concurrent login won the race: retire the credential we got */
  free(principal);
  return rv;
}

char *login_renew(const char *refused) {
  pthread_mutex_lock(&M.lock);
  int current = M.login != LOGIN_NONE && M.token && strcmp(M.token, refused) == 0;
  char *now = !current && M.login != LOGIN_NONE && M.token ? strdup(M.token) : NULL; /* renewed meanwhile */
  uint8_t key[HMAC_SHA256_LEN];
  memcpy(key, M.login_key, sizeof key);
  CK_USER_TYPE user = M.login == LOGIN_SO ? CKU_SO : CKU_USER;
  pthread_mutex_unlock(&M.lock);
  if (!current) {
    explicit_bzero(key, sizeof key);
    return now;
  }
  char *token = NULL, *principal = NULL;
  CK_RV rv = login_with_key(user, key, &token, &principal);
  explicit_bzero(key, sizeof key);
  if (rv != CKR_OK) return NULL;
  pthread_mutex_lock(&M.lock);
  /* Still the same login (no logout, no other renewal, the same principal): it goes on under the new credential. */
  if (M.login != LOGIN_NONE && M.token && strcmp(M.token, refused) == 0 && strcmp(M.principal, principal) == 0) {
    free(M.token);
    M.token = token;
    token = NULL;
    log_msg(LOG_INFO, "the login of %s was renewed", M.principal);
  }
  now = M.login != LOGIN_NONE && M.token ? strdup(M.token) : NULL;
  pthread_mutex_unlock(&M.lock);
  free(principal);
  logout_announce(token); /* not taken up: retired */
  return now;
}

CK_RV login_stop(void) {
  pthread_mutex_lock(&M.lock);
  char *t = login_end();
  CK_RV rv = t ? CKR_OK : CKR_USER_NOT_LOGGED_IN;
  pthread_mutex_unlock(&M.lock);
  logout_announce(t);
  return rv;
}
