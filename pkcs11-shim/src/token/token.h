/* The token's state: the module's lifetime (module.c), the session table (sessions.c), the
 * login with its credential and request key (login.c), the object table (objects.c) and the
 * token objects the gateway keeps (token-objects.c).
 *
 * Concurrency: M.lock guards the module's tables and is never held across a request to the
 * gateway, so sessions sign concurrently. Each session has an op_lock serialising calls on
 * that one session, and a reference count so C_CloseSession from another thread cannot free
 * it under a running call. */
#ifndef MPCHSM_TOKEN_H
#define MPCHSM_TOKEN_H

#include <pthread.h>
#include <sys/types.h>

#include "../remote/remote.h"

#define MAX_PIN 1024

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
/* C_CopyObject's new object: o's attributes with the template's in their place, in a malloc'ed
 * template (values copied; template_free). CKR_ATTRIBUTE_READ_ONLY for what a copy cannot change. */
CK_RV object_copy_template(const object_t *o, const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE **out, CK_ULONG *nout);
void template_free(CK_ATTRIBUTE *t, CK_ULONG n);
void object_destroy(object_t *o);
void objects_destroy_key(const char *uid); /* both objects of the token key `uid` names */
void objects_drop_session(CK_SESSION_HANDLE owner); /* 0: every session object */
void objects_free_all(void);
CK_RV key_ref_from(const object_t *o, key_ref_t *k);
void key_ref_free(key_ref_t *k);
void wb_key_ref(wbuf *w, const key_ref_t *k);

/* ---- token objects at the gateway (token-objects.c); M.lock not held ---- */
/* Each refreshes the object table with the gateway's answer; `uid` is the object's, copied. */
CK_RV token_object_create(const char *token, const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV token_object_destroy(CK_OBJECT_HANDLE h, const char *uid);
CK_RV token_object_set(const char *uid, const CK_ATTRIBUTE *t, CK_ULONG n);
/* Token objects the login may see (the gateway matches them) and session objects matching the
 * template, in a malloc'ed array. */
CK_RV objects_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE **found, size_t *nfound);

/* ---- sessions and their operations (sessions.c) ---- */
/* The operations a session can have going, one of each: an index into session_t.op. */
enum { KIND_SIGN, KIND_VERIFY, KIND_ENCRYPT, KIND_DECRYPT, KIND_DIGEST, N_KINDS };
extern const CK_FLAGS KIND_FLAGS[N_KINDS]; /* CKF_SIGN ... CKF_DIGEST */

typedef struct {
  int active;
  CK_MECHANISM_TYPE mech;
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
  crypto_op_t op[N_KINDS];
} session_t;

void crypto_op_reset(crypto_op_t *op);
CK_RV session_open(CK_FLAGS flags, CK_SESSION_HANDLE *h);
session_t *session_get(CK_SESSION_HANDLE h); /* takes a reference and the session's op_lock */
void session_put(session_t *s);
CK_RV session_close(CK_SESSION_HANDLE h);
void sessions_close_all(void);
void sessions_free_all(void); /* at C_Finalize: every session, in use or not */

/* ---- login (login.c) ---- */
enum { LOGIN_NONE, LOGIN_USER, LOGIN_SO };
/* C_Login past its session and argument checks: userType is CKU_USER or CKU_SO, pin not NULL. */
CK_RV login_start(CK_USER_TYPE userType, const CK_UTF8CHAR *pin, CK_ULONG pin_len);
/* Whether a wrong PIN of that type was given since its last successful login. Takes M.lock. */
int login_pin_count_low(CK_USER_TYPE userType);
CK_RV login_stop(void); /* C_Logout past its session check */
/* Ends the login (M.lock held, or at C_Finalize): the request key is wiped, not just
 * forgotten. Returns the credential, to announce a logout for and free. */
char *login_end(void);
void logout_announce(char *token); /* frees token; NULL: nothing to announce */
/* rpc.c's renewal (rpc_set_renewal): logs in again with the kept login key when `refused` is
 * still the current credential; answers the current credential (copied) or NULL. */
char *login_renew(const char *refused);
/* Current token, copied (NULL when logged out). Takes M.lock. */
char *token_copy(int *login);
/* The same, with that login's principal (NULL when logged out) and request key, copied under
 * the same lock so that all three belong to one login. The caller wipes the key copy. */
char *token_copy_keyed(int *login, char **principal, uint8_t key[HMAC_SHA256_LEN]);

/* ---- the module's state (module.c) ---- */
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
  /* The key derived from the PIN that logs in (same lifetime): a login the gateway stops
   * honouring is made again with it (login_renew), as a server logs in once and runs for days. */
  uint8_t login_key[HMAC_SHA256_LEN];
  /* Wrong PINs this module was answered since the last login of each type succeeded (CKU_USER,
   * CKU_SO): C_GetTokenInfo's CKF_USER_PIN_COUNT_LOW / CKF_SO_PIN_COUNT_LOW. */
  unsigned long wrong_pins[2];
  session_t **sessions;
  size_t nsessions, sessions_cap;
  CK_SESSION_HANDLE next_session;
  object_t **objects; /* by handle - 1 */
  size_t nobjects, objects_cap;
} module_t;
extern module_t M;

/* C_Initialize past its argument checks, for process `pid` (init lock held): forgets a parent's
 * state, reads the configuration, opens the log and the transport. */
CK_RV module_start(pid_t pid);
/* C_Finalize in the process that initialised (init lock held): logs out, frees everything. */
void module_stop(void);

#endif
