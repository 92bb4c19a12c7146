/* Requests to the gateway. A request is the list
 *   [version, op, abi, credential, ...arguments]
 * where abi tells the gateway how this platform lays out a CK_ULONG (bit 0: 8 bytes rather
 * than 4; bit 1: big-endian), so the attribute values it sends are the bytes an application
 * expects. The answer is [CKR value, ...results]; a failure carries [CKR value, reason], and
 * [CKR value, reason, LOGIN_ENDED] when the credential itself is not honoured. */
#include "remote.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_VERSION 1

static uint64_t abi_flags(void) {
  const uint16_t one = 1;
  int big = *(const uint8_t *)&one == 0;
  return (sizeof(CK_ULONG) == 8 ? 1u : 0u) | (big ? 2u : 0u);
}

static rpc_renew_fn renewal;

void rpc_set_renewal(rpc_renew_fn renew) { renewal = renew; }

void rpc_begin(rpc_t *q, int op, const char *token, uint32_t nargs) {
  memset(q, 0, sizeof *q);
  wb_list(&q->w, 4 + nargs);
  wb_uint(&q->w, WIRE_VERSION);
  wb_uint(&q->w, (uint64_t)op);
  wb_uint(&q->w, abi_flags());
  q->token = op == OP_LOGOUT ? NULL : token; /* a logout is never renewed */
  q->token_at = q->w.len;
  wb_str(&q->w, token);
  q->token_end = q->w.len;
}

/* The request under another credential: the one field replaced, the arguments (and their
 * proof, which does not cover the credential) as they were. */
static void retoken(rpc_t *q, const char *token) {
  wbuf w = {0};
  wb_raw(&w, q->w.data, q->token_at);
  wb_str(&w, token);
  size_t end = w.len;
  wb_raw(&w, q->w.data + q->token_end, q->w.len - q->token_end);
  wb_free(&q->w);
  q->w = w;
  q->token_end = end;
}

void wb_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n) {
  wb_list(w, (uint32_t)n);
  for (CK_ULONG i = 0; i < n; i++) {
    wb_list(w, 2);
    wb_uint(w, t[i].type);
    wb_bytes(w, t[i].pValue, t[i].pValue ? t[i].ulValueLen : 0);
  }
}

static CK_RV call_once(rpc_t *q, const char *what, int timeout_ms, int idempotent) {
  if (q->w.oom) {
    log_msg(LOG_ERROR, "%s: request too large or out of memory", what);
    return CKR_HOST_MEMORY;
  }
  char err[512];
  free(q->resp);
  q->resp = NULL;
  if (transport_call(q->w.data, q->w.len, timeout_ms, idempotent, &q->resp, &q->resp_len, err, sizeof err)) {
    log_msg(LOG_ERROR, "%s: %s", what, err);
    return CKR_DEVICE_ERROR;
  }
  q->r = (rbuf){.p = q->resp, .len = q->resp_len};
  uint32_t count;
  uint64_t rv;
  if (rd_list(&q->r, &count) || count < 1 || rd_uint(&q->r, &rv)) {
    log_msg(LOG_ERROR, "%s: the gateway sent a malformed answer", what);
    return CKR_DEVICE_ERROR;
  }
  q->login_ended = 0;
  if (rv != CKR_OK) {
    const uint8_t *reason = NULL, *request_id = NULL;
    size_t n = 0, id_len = 0;
    uint64_t mark;
    if (count >= 2) rd_bytes(&q->r, &reason, &n);
    if (count >= 3 && !rd_uint(&q->r, &mark)) q->login_ended = mark == ANSWER_LOGIN_ENDED;
    if (count >= 4 && rd_bytes(&q->r, &request_id, &id_len)) request_id = NULL, id_len = 0;
    log_request(rv == CKR_BUFFER_TOO_SMALL ? LOG_DEBUG : LOG_WARN, (const char *)request_id, id_len,
                "%s: refused (CKR 0x%lx): %.*s", what, (unsigned long)rv, (int)(n > 400 ? 400 : n),
                reason ? (const char *)reason : "no reason given");
  }
  return (CK_RV)rv;
}

CK_RV rpc_call(rpc_t *q, const char *what, int timeout_ms, int idempotent) {
  CK_RV rv = call_once(q, what, timeout_ms, idempotent);
  /* A credential the gateway no longer honours (its lifetime passed, the gateway restarted) is
   * refused before anything is done: the request goes once more under a renewed login. */
  if (rv == CKR_USER_NOT_LOGGED_IN && q->login_ended && q->token && *q->token && renewal) {
    char *fresh = renewal(q->token);
    if (fresh) {
      log_msg(LOG_INFO, "%s: the login was renewed; sending the request again", what);
      retoken(q, fresh);
      free(fresh);
      q->token = NULL;
      rv = call_once(q, what, timeout_ms, idempotent);
    }
  }
  return rv;
}

void rpc_end(rpc_t *q) {
  wb_free(&q->w);
  free(q->resp);
  memset(q, 0, sizeof *q);
}

CK_RV rpc_check(const char *token, const char *what, const char *uid, const char *caller, int timeout_ms) {
  rpc_t q;
  rpc_begin(&q, OP_CHECK, token, 2);
  wb_str(&q.w, what);
  wb_str(&q.w, uid);
  CK_RV rv = rpc_call(&q, caller, timeout_ms, 1);
  rpc_end(&q);
  return rv;
}
