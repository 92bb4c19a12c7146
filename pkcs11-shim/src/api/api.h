/* What the C_* entry points share: the initialisation check, the one slot, the version. The
 * entry points check their arguments, take the session, and call down; they declare nothing
 * of their own (include/pkcs11.h does). */
#ifndef MPCHSM_API_H
#define MPCHSM_API_H

#include <unistd.h>

#include "../ops/ops.h"

#define MPCHSM_VERSION_MAJOR 0
#define MPCHSM_VERSION_MINOR 1

#define SLOT_ID 0

#define CHECK_INIT()                                                              \
  do {                                                                            \
    if (!M.initialized || M.pid != getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED; \
  } while (0)

/* Fills a blank-padded PKCS#11 text field (slot.c). */
void pad(CK_UTF8CHAR *dst, size_t n, const char *src);

#endif
