/* Internals shared by the module's source files. */
#ifndef MPCHSM_MODULE_H
#define MPCHSM_MODULE_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../include/pkcs11.h"
#include "sha.h"

#define MPCHSM_VERSION_MAJOR 0
#define MPCHSM_VERSION_MINOR 1

/* ---- configuration (config.c) ---- */
typedef struct {
  char path[PATH_MAX];
  char host[256];
  char port[8];
  char log_path[PATH_MAX];
  int log_debug;
  int timeout_ms;
  int keygen_timeout_ms;
  int connect_timeout_ms;
  int tls;
  char tls_ca[PATH_MAX];
  char tls_server_name[256];
  unsigned key_types; /* KEY_TYPE_* bits: the keys C_FindObjects shows */
  char error[PATH_MAX + 256]; /* first problem found, for the log */
} config_t;
enum { KEY_TYPE_RSA = 1, KEY_TYPE_EC = 2, KEY_TYPE_EC_EDWARDS = 4 };
int config_load(config_t *c);

/* ---- log (log.c) ---- */
enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
int log_open(const char *path, int debug);
void log_close(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* ---- requests to the gateway (rpc.c); operation codes match OP in gateway/p11/handlers.ts ---- */
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
typedef struct {
  wbuf w;
  uint8_t *resp;
  size_t resp_len;
  rbuf r; /* positioned after the return value once rpc_call returned CKR_OK */
} rpc_t;
/* Starts a request: header values and room for `nargs` arguments the caller then appends. */
void rpc_begin(rpc_t *q, int op, const char *token, uint32_t nargs);
/* Sends it; returns the gateway's CKR_* (logging its reason) or CKR_DEVICE_ERROR. */
CK_RV rpc_call(rpc_t *q, const char *what, int timeout_ms, int idempotent);
void rpc_end(rpc_t *q);
void wb_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n);
/* Asks the gateway whether this login may start `what` (on token object `uid`, or NULL): the
 * gateway decides, and records the refusal this module expected. */
CK_RV rpc_check(const char *what, const char *uid, const char *caller);

/* ---- objects (objects.c) ---- */
typedef struct {
  CK_ATTRIBUTE_TYPE type;
  uint8_t *value;
  size_t len;
} attr_t;

typedef struct {
  CK_OBJECT_HANDLE handle;
  char *uid;               /* the gateway's name for a token object; NULL for a session object */
  CK_SESSION_HANDLE owner; /* session objects: the session that made it */
  int destroyed;
  attr_t *attrs;
  size_t nattrs;
  CK_ATTRIBUTE_TYPE *sensitive;
  size_t nsensitive;
  CK_ULONG out_len; /* longest signature/ciphertext/plaintext the key produces */
} object_t;

/* A key, as an operation needs it, copied out of the cache (the cache may change meanwhile). */
typedef struct {
  char *uid;      /* token key */
  wbuf session_key; /* session public key: its attributes, wire-encoded */
  CK_OBJECT_CLASS cls;
  CK_KEY_TYPE key_type;
  CK_ULONG out_len;
} key_ref_t;

/* All below: call with M.lock held. */
object_t *object_get(CK_OBJECT_HANDLE h);       /* visible, not destroyed; NULL otherwise */
const attr_t *object_attr(const object_t *o, CK_ATTRIBUTE_TYPE t);
int object_bool(const object_t *o, CK_ATTRIBUTE_TYPE t);
CK_ULONG object_ulong(const object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG dflt);
int object_matches(const object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n);
CK_RV object_read_attributes(const object_t *o, CK_ATTRIBUTE *t, CK_ULONG n);
/* Reads one object from the wire ([uid, attributes, sensitive types, out_len]) and stores or
 * refreshes it; returns its handle, 0 on a malformed value, or (CK_ULONG)-1 out of memory. */
CK_OBJECT_HANDLE object_upsert_from_wire(rbuf *r);
CK_RV object_create_session(CK_SESSION_HANDLE owner, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV object_set_session(object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n);
void object_destroy(object_t *o);
void objects_destroy_key(const char *uid); /* both objects of the token key `uid` names */
void objects_drop_session(CK_SESSION_HANDLE owner); /* 0: every session object */
void objects_free_all(void);
CK_RV key_ref_from(const object_t *o, key_ref_t *k);
void key_ref_free(key_ref_t *k);
void wb_key_ref(wbuf *w, const key_ref_t *k);

/* ---- sessions and the module's state (p11.c) ---- */
typedef struct {
  int active;
  CK_MECHANISM_TYPE mech;
  const struct mech_info *mi;
  key_ref_t key;
  wbuf params;      /* wire-encoded mechanism parameters */
  int hashing;      /* the module hashes the data (CKM_SHA*_..., Ed25519ph, C_Digest) */
  sha_ctx hash;
  uint8_t *data;    /* otherwise, the buffered input */
  size_t data_len, data_cap;
  int multipart;    /* an Update call was made */
  uint8_t *result;  /* output kept after CKR_BUFFER_TOO_SMALL */
  size_t result_len;
  uint8_t *result_input; /* the input that result belongs to (single-part calls) */
  size_t result_input_len;
} crypto_op_t;

typedef struct session {
  CK_SESSION_HANDLE handle;
  CK_FLAGS flags;
  int refs;
  int closed;
  pthread_mutex_t op_lock; /* one call at a time per session */
  int find_active;
  CK_OBJECT_HANDLE *found;
  size_t nfound, find_pos;
  crypto_op_t sign, verify, encrypt, decrypt, digest;
} session_t;

enum { LOGIN_NONE, LOGIN_USER, LOGIN_SO };

typedef struct {
  int initialized;
  pid_t pid;
  pthread_mutex_t lock;
  config_t cfg;
  int login;
  char *token; /* the session credential the gateway issued at C_Login */
  /* Same lifetime as token: the principal the gateway named, and the key derived from the PIN
   * that MACs its Sign/Decrypt requests (wiped at logout). */
  char *principal;
  uint8_t request_key[HMAC_SHA256_LEN];
  session_t **sessions;
  size_t nsessions, sessions_cap;
  CK_SESSION_HANDLE next_session;
  object_t **objects; /* by handle - 1 */
  size_t nobjects, objects_cap;
} module_t;
extern module_t M;

/* Current token, copied (NULL when logged out). Takes M.lock. */
char *token_copy(int *login);
/* The same, with that login's principal (NULL when logged out) and request key, copied under
 * the same lock so that all three belong to one login. The caller wipes the key copy. */
char *token_copy_keyed(int *login, char **principal, uint8_t key[HMAC_SHA256_LEN]);
session_t *session_get(CK_SESSION_HANDLE h); /* takes a reference and the session's op_lock */
void session_put(session_t *s);

/* ---- mechanisms and operations (ops.c) ---- */
typedef struct mech_info {
  CK_MECHANISM_TYPE mech;
  CK_KEY_TYPE key_type; /* (CK_ULONG)-1: none (digests) */
  CK_FLAGS flags;
  CK_ULONG min_bits, max_bits;
  int hash; /* 1 + sha_alg the module applies to the data; 0: data goes as it is */
} mech_info_t;
const mech_info_t *mech_find(CK_MECHANISM_TYPE m);
extern const mech_info_t MECHANISMS[];
extern const size_t N_MECHANISMS;
void crypto_op_reset(crypto_op_t *op);
int random_fill(uint8_t *p, size_t n); /* the kernel's generator; -1 (errno set) on failure */

/* ---- PIN-derived keys and request proofs (auth.c) ---- */
/* Derives both keys from the PIN with the gateway's KDF parameters; the PIN is not sent. */
CK_RV auth_derive(const uint8_t *pin, size_t pin_len, uint8_t login_key[HMAC_SHA256_LEN],
                  uint8_t request_key[HMAC_SHA256_LEN]);
/* Appends a Sign/Decrypt request's proof argument; `args` is where the request's five operation
 * arguments start in `w`. principal NULL: not logged in (an empty proof). */
CK_RV auth_proof(wbuf *w, size_t args, size_t nargs, int op, const char *principal, const uint8_t key[HMAC_SHA256_LEN]);

#define ULONG_BYTES ((uint64_t)sizeof(CK_ULONG))

#endif
