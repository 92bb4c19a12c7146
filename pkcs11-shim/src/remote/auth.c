/* The principal's proof of each Sign/Decrypt: derives the PIN's keys and MACs requests, nothing
 * else. At C_Login the module derives two keys from the PIN, with the salt and iteration count
 * the gateway hands out (OP_PIN_KDF, fetched by token/login.c):
 *   master = PBKDF2-HMAC-SHA256(PIN, salt, iterations), 32 bytes
 *   login key = HMAC(master, LOGIN_LABEL), sent instead of the PIN
 *   request key = HMAC(master, REQUEST_LABEL), kept for the session
 * Each Sign/Decrypt then carries [principal, timestamp, nonce, HMAC(request key, M)] with
 *   M = [REQUEST_LABEL, principal, timestamp, nonce, op, key, mechanism, parameters, input, hashing]
 * whose last five values are the request's own arguments, byte for byte. Every signer checks
 * the MAC itself, and the timestamp and nonce bound replays; the gateway, which never sees the
 * PIN or the request key, cannot ask in the principal's name. */
#include "remote.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define LOGIN_LABEL "mpchsm-p11-login-v1"
#define REQUEST_LABEL "mpchsm-p11-request-v1"
#define LABEL(s) (const uint8_t *)(s), sizeof(s) - 1 /* a string literal's bytes, without the NUL */
#define NONCE_LEN 16

void auth_derive(const uint8_t *pin, size_t pin_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                 uint8_t login_key[HMAC_SHA256_LEN], uint8_t request_key[HMAC_SHA256_LEN]) {
  uint8_t master[HMAC_SHA256_LEN];
  pbkdf2_sha256(pin, pin_len, salt, salt_len, iterations, master, sizeof master);
  hmac_sha256(master, sizeof master, LABEL(LOGIN_LABEL), login_key);
  hmac_sha256(master, sizeof master, LABEL(REQUEST_LABEL), request_key);
  explicit_bzero(master, sizeof master);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* `args`: where the request's `nargs` operation arguments start in w (C_Sign/C_Decrypt: key,
 * mechanism, parameters, input, hashing; C_GenerateKeyPair: mechanism and both templates;
 * C_SetAttributeValue: the object and the template); they
 * are w's tail as they stand, so the MAC covers exactly what is sent. */
CK_RV auth_proof(wbuf *w, size_t args, size_t nargs, int op, const char *principal, const uint8_t key[HMAC_SHA256_LEN]) {
  if (!principal) {
    wb_list(w, 0);
    return CKR_OK;
  }
  if (w->oom) return CKR_HOST_MEMORY;
  uint8_t nonce[NONCE_LEN], mac[HMAC_SHA256_LEN];
  if (random_fill(nonce, sizeof nonce)) {
    log_msg(LOG_ERROR, "request proof: getrandom failed: %s", strerror(errno));
    return CKR_FUNCTION_FAILED;
  }
  uint64_t now = now_ms();
  wbuf head = {0};
  wb_list(&head, 5 + nargs);
  wb_bytes(&head, LABEL(REQUEST_LABEL));
  wb_str(&head, principal);
  wb_uint(&head, now);
  wb_bytes(&head, nonce, sizeof nonce);
  wb_uint(&head, (uint64_t)op);
  if (head.oom) {
    wb_free(&head);
    return CKR_HOST_MEMORY;
  }
  hmac_ctx h;
  hmac_init(&h, key, HMAC_SHA256_LEN);
  hmac_update(&h, head.data, head.len);
  hmac_update(&h, w->data + args, w->len - args);
  hmac_final(&h, mac);
  wb_free(&head);
  wb_list(w, 4);
  wb_str(w, principal);
  wb_uint(w, now);
  wb_bytes(w, nonce, sizeof nonce);
  wb_bytes(w, mac, sizeof mac);
  return CKR_OK;
}
