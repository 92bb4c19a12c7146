/* Known-answer tests of HMAC-SHA256 (RFC 4231 test cases 1-4, 6, 7) and PBKDF2-HMAC-SHA256
 * (RFC 7914 §11). Prints "ok NAME" or "FAIL NAME: got HEX, want HEX" per case; exits 1 if any
 * case failed, else 0. */
#include <stdio.h>
#include <string.h>

#include "../src/base/base.h"

static int failures;

static void check(const char *name, const uint8_t *got, size_t n, const char *want) {
  char hex[2 * 64 + 1];
  for (size_t i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", got[i]);
  if (strcmp(hex, want) == 0) {
    printf("ok %s\n", name);
  } else {
    printf("FAIL %s: got %s, want %s\n", name, hex, want);
    failures++;
  }
}

static void hmac_case(const char *name, const uint8_t *key, size_t key_len, const void *msg, size_t msg_len, const char *want) {
  uint8_t mac[HMAC_SHA256_LEN];
  hmac_sha256(key, key_len, msg, msg_len, mac);
  check(name, mac, sizeof mac, want);
}

static void pbkdf2_case(const char *name, const char *password, const char *salt, uint32_t c, const char *want) {
  uint8_t dk[64];
  pbkdf2_sha256((const uint8_t *)password, strlen(password), (const uint8_t *)salt, strlen(salt), c, dk, sizeof dk);
  check(name, dk, sizeof dk, want);
}

int main(void) {
  uint8_t key[131], msg[50];
  const char *s;

  memset(key, 0x0b, 20);
  hmac_case("rfc4231-1", key, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  s = "what do ya want for nothing?";
  hmac_case("rfc4231-2", (const uint8_t *)"Jefe", 4, s, strlen(s), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  memset(key, 0xaa, 20), memset(msg, 0xdd, 50);
  hmac_case("rfc4231-3", key, 20, msg, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  for (int i = 0; i < 25; i++) key[i] = (uint8_t)(i + 1);
  memset(msg, 0xcd, 50);
  hmac_case("rfc4231-4", key, 25, msg, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  memset(key, 0xaa, 131);
  s = "Test Using Larger Than Block-Size Key - Hash Key First";
  hmac_case("rfc4231-6", key, 131, s, strlen(s), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  s = "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed "
      "before being used by the HMAC algorithm.";
  hmac_case("rfc4231-7", key, 131, s, strlen(s), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");

  pbkdf2_case("rfc7914-passwd", "passwd", "salt", 1,
              "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
              "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
  pbkdf2_case("rfc7914-Password", "Password", "NaCl", 80000,
              "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
              "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d");
  return failures ? 1 : 0;
}
