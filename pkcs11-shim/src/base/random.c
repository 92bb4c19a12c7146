/* Random bytes from the kernel's generator (getrandom(2)), for request nonces and C_GenerateRandom. */
#include "base.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

int random_fill(uint8_t *p, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t k = getrandom(p + got, n - got > 1 << 20 ? 1 << 20 : n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}
