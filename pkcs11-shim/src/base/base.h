/* The module's ground floor: configuration, log, hashes, HMAC and the kernel's random bytes.
 * Nothing here knows PKCS#11 or the gateway; every other folder builds on it. */
#ifndef MPCHSM_BASE_H
#define MPCHSM_BASE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

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
/* As log_msg, naming the gateway's request (its audit entries' detail.requestId). */
void log_request(int level, const char *request_id, size_t request_id_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- hashes (sha.c) and HMAC (hmac.c) ----
 * SHA-1, SHA-224/256 and SHA-384/512 (FIPS 180-4), streaming, with HMAC-SHA256 and
 * PBKDF2-HMAC-SHA256 over the same SHA-256. The module's only cryptography: it hashes for the
 * CKM_SHA* sign/verify variants and C_Digest, so multi-part signing needs constant memory and
 * the gateway receives a digest; and at C_Login it derives the session's request key from the
 * PIN (PBKDF2, then HMAC) and MACs each Sign/Decrypt request with it (HMAC), so the signers can
 * check that the principal asked without the gateway ever learning the PIN or the key. It keeps
 * no secret but the session's credential and that key. */
typedef enum { SHA_1, SHA_224, SHA_256, SHA_384, SHA_512 } sha_alg;

typedef struct {
  sha_alg alg;
  uint64_t state[8]; /* 32-bit algorithms use the low halves */
  uint8_t block[128];
  size_t used;        /* bytes waiting in block */
  uint64_t total_lo;  /* message length in bytes, 128-bit */
  uint64_t total_hi;
} sha_ctx;

#define SHA_MAX_DIGEST 64

size_t sha_digest_len(sha_alg alg);
void sha_init(sha_ctx *c, sha_alg alg);
void sha_update(sha_ctx *c, const uint8_t *data, size_t len);
/* Writes sha_digest_len(alg) bytes; the context must be re-initialised to be used again. */
void sha_final(sha_ctx *c, uint8_t *out);

#define HMAC_SHA256_LEN 32

/* HMAC-SHA256, streaming: the context holds the keyed inner and outer hashes. */
typedef struct {
  sha_ctx inner, outer;
} hmac_ctx;
void hmac_init(hmac_ctx *h, const uint8_t *key, size_t key_len);
void hmac_update(hmac_ctx *h, const uint8_t *data, size_t len);
void hmac_final(hmac_ctx *h, uint8_t out[HMAC_SHA256_LEN]); /* wipes the context */
void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t out[HMAC_SHA256_LEN]);
/* RFC 8018 §5.2 with HMAC-SHA256 as the PRF; iterations >= 1. */
void pbkdf2_sha256(const uint8_t *password, size_t password_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                   uint8_t *out, size_t out_len);

/* ---- random (random.c) ---- */
int random_fill(uint8_t *p, size_t n); /* the kernel's generator; -1 (errno set) on failure */

#endif
