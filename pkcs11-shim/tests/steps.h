/* What the module's C test programs share: opening the module under test as an application
 * does (dlopen), and printing one line per step, `STEP RV [DETAIL]`, for test/p11 to check. */
#ifndef MPCHSM_TESTS_STEPS_H
#define MPCHSM_TESTS_STEPS_H

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "../include/pkcs11.h"

__attribute__((format(printf, 3, 4), unused)) static void step(const char *name, CK_RV rv, const char *fmt, ...) {
  static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&out);
  printf("%s 0x%lx", name, rv);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    putchar(' ');
    vprintf(fmt, ap);
    va_end(ap);
  }
  putchar('\n');
  fflush(stdout);
  pthread_mutex_unlock(&out);
}

/* The module named by argv[1] (argv[2] names the scenario), or NULL having said why. */
static void *open_module(int argc, char **argv, const char *usage) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s\n", usage);
    return NULL;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) fprintf(stderr, "%s\n", dlerror());
  return lib;
}

#endif
