/* The session table: opening, finding (with a reference and the session's op_lock), closing,
 * and each session's operations in progress. The last session's closing logs the application
 * out (PKCS#11 §5.6). */
#include "token.h"

#include <stdlib.h>
#include <string.h>

const CK_FLAGS KIND_FLAGS[N_KINDS] = {CKF_SIGN, CKF_VERIFY, CKF_ENCRYPT, CKF_DECRYPT, CKF_DIGEST};

void crypto_op_reset(crypto_op_t *op) {
  key_ref_free(&op->key);
  wb_free(&op->params);
  free(op->data);
  free(op->result);
  free(op->result_input);
  memset(op, 0, sizeof *op);
}

static void ops_reset(session_t *s) {
  for (size_t j = 0; j < N_KINDS; j++) crypto_op_reset(&s->op[j]);
}

static void session_free(session_t *s) {
  ops_reset(s);
  free(s->found);
  pthread_mutex_destroy(&s->op_lock);
  free(s);
}

CK_RV session_open(CK_FLAGS flags, CK_SESSION_HANDLE *h) {
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
    *h = s->handle;
  }
  pthread_mutex_unlock(&M.lock);
  if (rv != CKR_OK) session_free(s);
  return rv;
}

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

void session_put(session_t *s) {
  pthread_mutex_unlock(&s->op_lock);
  pthread_mutex_lock(&M.lock);
  int gone = --s->refs == 0 && s->closed;
  pthread_mutex_unlock(&M.lock);
  if (gone) session_free(s);
}

/* Removes a session from the table (M.lock held); frees it once no call is using it. Returns
 * the token to announce a logout for, if this was the last session. */
static char *session_remove(size_t i, session_t **to_free) {
  session_t *s = M.sessions[i];
  M.sessions[i] = M.sessions[--M.nsessions];
  objects_drop_session(s->handle);
  s->closed = 1;
  *to_free = s->refs == 0 ? s : NULL;
  return M.nsessions == 0 && M.token ? login_end() : NULL;
}

CK_RV session_close(CK_SESSION_HANDLE h) {
  pthread_mutex_lock(&M.lock);
  session_t *to_free = NULL;
  char *logout = NULL;
  CK_RV rv = CKR_SESSION_HANDLE_INVALID;
  for (size_t i = 0; i < M.nsessions; i++)
    if (M.sessions[i]->handle == h) {
      logout = session_remove(i, &to_free);
      rv = CKR_OK;
      break;
    }
  pthread_mutex_unlock(&M.lock);
  if (to_free) session_free(to_free);
  logout_announce(logout);
  return rv;
}

void sessions_close_all(void) {
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
  logout_announce(logout);
}

void sessions_free_all(void) {
  for (size_t i = 0; i < M.nsessions; i++) {
    session_t *s = M.sessions[i];
    ops_reset(s);
    free(s->found);
    free(s);
  }
  free(M.sessions);
}
