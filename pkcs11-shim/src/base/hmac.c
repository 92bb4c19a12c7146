/* HMAC-SHA256 (RFC 2104, FIPS 198-1) and PBKDF2-HMAC-SHA256 (RFC 8018 §5.2). Every buffer that
 * held key material is wiped before it goes out of scope. */
#include "base.h"

#include <string.h>

#define BLOCK 64 /* SHA-256's block length */

void hmac_init(hmac_ctx *h, const uint8_t *key, size_t key_len) {
  uint8_t k[BLOCK] = {0}, pad[BLOCK];
  if (key_len > BLOCK) {
    sha_init(&h->inner, SHA_256);
    sha_update(&h->inner, key, key_len);
    sha_final(&h->inner, k);
  } else if (key_len) {
    memcpy(k, key, key_len);
  }
  for (size_t i = 0; i < BLOCK; i++) pad[i] = k[i] ^ 0x36;
  sha_init(&h->inner, SHA_256);
  sha_update(&h->inner, pad, BLOCK);
  for (size_t i = 0; i < BLOCK; i++) pad[i] = k[i] ^ 0x5c;
  sha_init(&h->outer, SHA_256);
  sha_update(&h->outer, pad, BLOCK);
  explicit_bzero(k, sizeof k);
  explicit_bzero(pad, sizeof pad);
}

void hmac_update(hmac_ctx *h, const uint8_t *data, size_t len) { sha_update(&h->inner, data, len); }

void hmac_final(hmac_ctx *h, uint8_t out[HMAC_SHA256_LEN]) {
  uint8_t inner[HMAC_SHA256_LEN];
  sha_final(&h->inner, inner);
  sha_update(&h->outer, inner, sizeof inner);
  sha_final(&h->outer, out);
  explicit_bzero(inner, sizeof inner);
  explicit_bzero(h, sizeof *h);
}

void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t out[HMAC_SHA256_LEN]) {
  hmac_ctx h;
  hmac_init(&h, key, key_len);
  hmac_update(&h, msg, msg_len);
  hmac_final(&h, out);
}

/* T_i = U_1 ^ ... ^ U_c with U_1 = PRF(P, S || INT(i)), U_j = PRF(P, U_{j-1}). The password is
 * keyed once and the keyed state copied for each PRF call: two compressions per iteration. */
void pbkdf2_sha256(const uint8_t *password, size_t password_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                   uint8_t *out, size_t out_len) {
  hmac_ctx keyed, h;
  uint8_t u[HMAC_SHA256_LEN], t[HMAC_SHA256_LEN];
  hmac_init(&keyed, password, password_len);
  for (uint32_t i = 1; out_len > 0; i++) {
    const uint8_t index[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    h = keyed;
    hmac_update(&h, salt, salt_len);
    hmac_update(&h, index, sizeof index);
    hmac_final(&h, u);
    memcpy(t, u, sizeof t);
    for (uint32_t j = 1; j < iterations; j++) {
      h = keyed;
      hmac_update(&h, u, sizeof u);
      hmac_final(&h, u);
      for (size_t k = 0; k < sizeof t; k++) t[k] ^= u[k];
    }
    size_t n = out_len < sizeof t ? out_len : sizeof t;
    memcpy(out, t, n);
    out += n, out_len -= n;
  }
  explicit_bzero(&keyed, sizeof keyed);
  explicit_bzero(u, sizeof u);
  explicit_bzero(t, sizeof t);
}
