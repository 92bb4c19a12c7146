/* SHA-1, SHA-224/256 and SHA-384/512 (FIPS 180-4), streaming. The module's only cryptography:
 * it hashes for the CKM_SHA* sign/verify variants and C_Digest, so multi-part signing needs
 * constant memory and the gateway receives a digest. */
#ifndef MPCHSM_SHA_H
#define MPCHSM_SHA_H

#include <stddef.h>
#include <stdint.h>

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

#endif
