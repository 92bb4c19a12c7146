/* Hashes stdin with each algorithm, feeding it in pieces of `argv[1]` bytes (default: all at
 * once) to exercise the streaming paths; prints one hex digest per line, SHA-1 to SHA-512. */
#include <stdio.h>
#include <stdlib.h>

#include "../src/base/base.h"

int main(int argc, char **argv) {
  size_t cap = 1 << 16, len = 0, n;
  unsigned char *buf = malloc(cap);
  while (buf && (n = fread(buf + len, 1, cap - len, stdin)) > 0)
    if ((len += n) == cap) buf = realloc(buf, cap *= 2);
  if (!buf) return 1;
  size_t piece = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 0;
  for (int a = SHA_1; a <= SHA_512; a++) {
    sha_ctx c;
    unsigned char d[SHA_MAX_DIGEST];
    sha_init(&c, (sha_alg)a);
    for (size_t off = 0; off < len || off == 0; off += piece ? piece : len) {
      size_t k = piece && len - off > piece ? piece : len - off;
      sha_update(&c, buf + off, k);
      if (len == 0) break;
    }
    sha_final(&c, d);
    for (size_t i = 0; i < sha_digest_len((sha_alg)a); i++) printf("%02x", d[i]);
    printf("\n");
  }
  free(buf);
  return 0;
}
