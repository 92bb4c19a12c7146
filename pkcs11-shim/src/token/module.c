/* The module's state M and its lifetime, from C_Initialize to C_Finalize.
 *
 * Fork: the state belongs to the process that called C_Initialize. In a child every function
 * answers CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize, which starts afresh
 * without touching the parent's connections or locks. */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

module_t M;

CK_RV module_start(pid_t pid) {
  if (M.initialized) {
    /* A forked child: the parent's state (and its socket streams) are not ours. Forget them
     * without freeing: another thread of the parent may have held a lock at the fork. The
     * parent's request key is wiped: the child must log in to MAC requests of its own. */
    transport_shutdown(1);
    explicit_bzero(M.request_key, sizeof M.request_key);
    explicit_bzero(M.login_key, sizeof M.login_key);
    memset(&M, 0, sizeof M);
  }
  config_t *c = &M.cfg;
  int bad = config_load(c);
  const char *fallback = getenv("MPCHSM_PKCS11_LOG");
  if (c->log_path[0]) {
    if (log_open(c->log_path, c->log_debug)) fprintf(stderr, "mpchsm-pkcs11: cannot open the log file %s\n", c->log_path);
  } else if (fallback && *fallback) {
    log_open(fallback, 0);
  }
  if (bad) {
    log_msg(LOG_ERROR, "C_Initialize: configuration: %s", c->error);
    log_close();
    return CKR_GENERAL_ERROR;
  }
  char err[512];
  if (transport_init(c, err, sizeof err)) {
    log_msg(LOG_ERROR, "C_Initialize: %s", err);
    log_close();
    return CKR_GENERAL_ERROR;
  }
  pthread_mutex_init(&M.lock, NULL);
  rpc_set_renewal(login_renew);
  M.pid = pid;
  M.next_session = 1;
  M.initialized = 1;
  log_msg(LOG_INFO, "initialised: gateway %s:%s%s", c->host, c->port, c->tls ? " (TLS)" : "");
  return CKR_OK;
}

void module_stop(void) {
  if (M.token) {
    rpc_t q;
    rpc_begin(&q, OP_LOGOUT, M.token, 0);
    rpc_call(&q, "C_Finalize (logout)", 2000, 1);
    rpc_end(&q);
  }
  transport_shutdown(0);
  sessions_free_all();
  objects_free_all();
  free(login_end());
  log_msg(LOG_DEBUG, "finalised");
  log_close();
  memset(&M, 0, sizeof M);
}
