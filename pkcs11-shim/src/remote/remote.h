/* Talking to the gateway: the wire's values (wire.c), framed requests over a connection pool
 * (transport.c), requests and answers (rpc.c), and the PIN-derived keys and request proofs
 * (auth.c). Nothing here reads the module's state: a request's credential is an argument. */
#ifndef MPCHSM_REMOTE_H
#define MPCHSM_REMOTE_H

#include "../../include/pkcs11.h"
#include "../base/base.h"

/* ---- wire values (wire.c) ---- */
enum { WIRE_UINT = 1, WIRE_BYTES = 2, WIRE_LIST = 3 };
#define WIRE_MAX (32 * 1024 * 1024) /* largest frame either side accepts */
typedef struct {
  uint8_t *data;
  size_t len, cap;
  int oom;
} wbuf;
void wb_uint(wbuf *w, uint64_t v);
void wb_bytes(wbuf *w, const void *p, size_t n);
void wb_raw(wbuf *w, const void *p, size_t n); /* already-encoded values */
void wb_str(wbuf *w, const char *s);
void wb_list(wbuf *w, uint32_t count);
void wb_free(wbuf *w);
typedef struct {
  const uint8_t *p;
  size_t len, pos;
  int err;
} rbuf;
int rd_uint(rbuf *r, uint64_t *v);
int rd_bytes(rbuf *r, const uint8_t **p, size_t *n);
int rd_list(rbuf *r, uint32_t *count);
char *rd_strdup(rbuf *r);

/* ---- transport (transport.c) ---- */
int transport_init(const config_t *cfg, char *err, size_t errlen);
void transport_shutdown(int after_fork);
int transport_call(const uint8_t *req, size_t req_len, int timeout_ms, int idempotent, uint8_t **resp, size_t *resp_len,
                   char *err, size_t errlen);

/* ---- requests to the gateway (rpc.c); operation codes match OP in contract/pkcs11/wire.ts (test/p11/wire-codes.test.ts) ---- */
enum {
  OP_LOGIN = 1,
  OP_LOGOUT = 2,
  OP_FIND = 3,
  OP_SIGN = 4,
  OP_VERIFY = 5,
  OP_ENCRYPT = 6,
  OP_DECRYPT = 7,
  OP_GENERATE_KEY_PAIR = 8,
  OP_CREATE_OBJECT = 9,
  OP_DESTROY_OBJECT = 10,
  OP_SET_ATTRIBUTES = 11,
  OP_CHECK = 12,
  OP_PIN_KDF = 13,
};
/* A failure answer's third value: the credential itself is not honoured (a login may renew it). */
enum { ANSWER_LOGIN_ENDED = 1 };
typedef struct {
  wbuf w;
  uint8_t *resp;
  size_t resp_len;
  rbuf r; /* positioned after the return value once rpc_call returned CKR_OK */
  const char *token; /* the credential the request carries (the caller's copy), and where */
  size_t token_at, token_end;
  int login_ended; /* the last answer said the credential itself is not honoured */
} rpc_t;
/* Asked when the gateway refuses a request's credential (CKR_USER_NOT_LOGGED_IN): answers a
 * credential to send the request under once more (the caller frees it), or NULL. Set by the
 * module, which holds the login; rpc_call sends a request again at most once. */
typedef char *(*rpc_renew_fn)(const char *refused);
void rpc_set_renewal(rpc_renew_fn renew);
/* Starts a request under the session credential `token` (NULL: none): header values and room
 * for `nargs` arguments the caller then appends. */
void rpc_begin(rpc_t *q, int op, const char *token, uint32_t nargs);
/* Sends it; returns the gateway's CKR_* (logging its reason) or CKR_DEVICE_ERROR. */
CK_RV rpc_call(rpc_t *q, const char *what, int timeout_ms, int idempotent);
void rpc_end(rpc_t *q);
void wb_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n);
/* Asks the gateway whether the login holding `token` may start `what` (on token object `uid`,
 * or NULL): the gateway decides, and records the refusal this module expected. */
CK_RV rpc_check(const char *token, const char *what, const char *uid, const char *caller, int timeout_ms);

/* ---- PIN-derived keys and request proofs (auth.c) ---- */
/* The PIN KDF parameters the module accepts from the gateway (OP_PIN_KDF). */
#define AUTH_SALT_MIN 16
#define AUTH_SALT_MAX 64
#define AUTH_ITERATIONS_MIN 1000
#define AUTH_ITERATIONS_MAX 10000000
/* Derives both keys from the PIN with the gateway's KDF parameters; the PIN is not sent. */
void auth_derive(const uint8_t *pin, size_t pin_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                 uint8_t login_key[HMAC_SHA256_LEN], uint8_t request_key[HMAC_SHA256_LEN]);
/* Appends a request's proof argument; `args` is where the request's `nargs` operation arguments
 * start in `w`. principal NULL: not logged in (an empty proof). */
CK_RV auth_proof(wbuf *w, size_t args, size_t nargs, int op, const char *principal, const uint8_t key[HMAC_SHA256_LEN]);

#endif
