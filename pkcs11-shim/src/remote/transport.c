/* Frames to and from the gateway: a pool of persistent connections (one per concurrent
 * request), each request bounded by a deadline. TLS, when configured, goes through the
 * system's libssl, loaded at run time so the module builds with `cc` alone. */
#include "remote.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- libssl, resolved with dlsym ----------------------------------------------------- */

typedef struct {
  void *lib;
  const void *(*TLS_client_method)(void);
  void *(*SSL_CTX_new)(const void *);
  void (*SSL_CTX_free)(void *);
  long (*SSL_CTX_ctrl)(void *, int, long, void *);
  void (*SSL_CTX_set_verify)(void *, int, void *);
  int (*SSL_CTX_load_verify_locations)(void *, const char *, const char *);
  int (*SSL_CTX_set_default_verify_paths)(void *);
  void *(*SSL_new)(void *);
  void (*SSL_free)(void *);
  int (*SSL_set_fd)(void *, int);
  long (*SSL_ctrl)(void *, int, long, void *);
  int (*SSL_set1_host)(void *, const char *);
  void *(*SSL_get0_param)(void *);
  int (*X509_VERIFY_PARAM_set1_ip_asc)(void *, const char *);
  int (*SSL_connect)(void *);
  int (*SSL_read)(void *, void *, int);
  int (*SSL_write)(void *, const void *, int);
  long (*SSL_get_verify_result)(const void *);
  const char *(*X509_verify_cert_error_string)(long);
  unsigned long (*ERR_get_error)(void);
  void (*ERR_error_string_n)(unsigned long, char *, size_t);
  void *ctx;
} ssl_api;

#define SSL_VERIFY_PEER 1
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define SSL_CTRL_SET_MIN_PROTO_VERSION 123
#define TLS1_2_VERSION 0x0303

static ssl_api ssl;

static int tls_load(const config_t *cfg, char *err, size_t errlen) {
  const char *names[] = {"libssl.so.3", "libssl.so"};
  for (size_t i = 0; i < 2 && !ssl.lib; i++) ssl.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!ssl.lib) {
    snprintf(err, errlen, "tls = on, but the system's libssl (libssl.so.3) cannot be loaded: %s", dlerror());
    return -1;
  }
#define SYM(name)                                                                           \
  if (!(*(void **)&ssl.name = dlsym(ssl.lib, #name))) {                                     \
    snprintf(err, errlen, "tls = on, but libssl lacks %s (OpenSSL 1.1.1 or later needed)", #name); \
    return -1;                                                                              \
  }
  SYM(TLS_client_method) SYM(SSL_CTX_new) SYM(SSL_CTX_free) SYM(SSL_CTX_ctrl) SYM(SSL_CTX_set_verify)
  SYM(SSL_CTX_load_verify_locations) SYM(SSL_CTX_set_default_verify_paths) SYM(SSL_new) SYM(SSL_free) SYM(SSL_set_fd)
  SYM(SSL_ctrl) SYM(SSL_set1_host) SYM(SSL_get0_param) SYM(X509_VERIFY_PARAM_set1_ip_asc) SYM(SSL_connect) SYM(SSL_read)
  SYM(SSL_write) SYM(SSL_get_verify_result) SYM(X509_verify_cert_error_string) SYM(ERR_get_error) SYM(ERR_error_string_n)
#undef SYM
  ssl.ctx = ssl.SSL_CTX_new(ssl.TLS_client_method());
  if (!ssl.ctx) {
    snprintf(err, errlen, "cannot create a TLS context");
    return -1;
  }
  ssl.SSL_CTX_ctrl(ssl.ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
  ssl.SSL_CTX_set_verify(ssl.ctx, SSL_VERIFY_PEER, NULL);
  int ok = cfg->tls_ca[0] ? ssl.SSL_CTX_load_verify_locations(ssl.ctx, cfg->tls_ca, NULL) : ssl.SSL_CTX_set_default_verify_paths(ssl.ctx);
  if (ok != 1) {
    snprintf(err, errlen, "cannot load the CA certificates %s", cfg->tls_ca[0] ? cfg->tls_ca : "(system default)");
    return -1;
  }
  return 0;
}

/* ---- connections --------------------------------------------------------------------- */

typedef struct {
  int fd;
  void *tls;
  time_t idle_since;
} conn_t;

#define POOL_MAX 32
#define POOL_IDLE_SECONDS 60 /* the gateway keeps logged-in idle connections for 300 s; we reuse for less */

static const config_t *tcfg;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static conn_t pool[POOL_MAX];
static int pool_n;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_timeouts(int fd, int64_t deadline) {
  int64_t left = deadline - now_ms();
  if (left < 1) left = 1;
  struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void conn_close(conn_t *c) {
  if (c->tls) ssl.SSL_free(c->tls); /* no close_notify: the gateway treats EOF as the end */
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->tls = NULL;
}

static void tls_error(char *err, size_t errlen, const char *what) {
  unsigned long e = ssl.ERR_get_error();
  char buf[256] = "";
  if (e) ssl.ERR_error_string_n(e, buf, sizeof buf);
  snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static int conn_open(conn_t *c, int64_t deadline, char *err, size_t errlen) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
  int rc = getaddrinfo(tcfg->host, tcfg->port, &hints, &res);
  if (rc) {
    snprintf(err, errlen, "cannot resolve gateway host %s: %s", tcfg->host, gai_strerror(rc));
    return -1;
  }
  c->fd = -1;
  c->tls = NULL;
  int last = 0;
  for (ai = res; ai && c->fd < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      int64_t connect_deadline = now_ms() + tcfg->connect_timeout_ms;
      if (connect_deadline > deadline) connect_deadline = deadline;
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int left = (int)(connect_deadline - now_ms());
      int ready = poll(&p, 1, left > 0 ? left : 0);
      if (ready == 1) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        r = soerr ? (errno = soerr, -1) : 0;
      } else {
        if (ready == 0) errno = ETIMEDOUT;
        r = -1;
      }
    }
    if (r == 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c->fd = fd;
    } else {
      last = errno;
      close(fd);
    }
  }
  freeaddrinfo(res);
  if (c->fd < 0) {
    snprintf(err, errlen, "cannot connect to the gateway at %s:%s: %s", tcfg->host, tcfg->port, strerror(last ? last : ETIMEDOUT));
    return -1;
  }
  if (!tcfg->tls) return 0;
  set_timeouts(c->fd, deadline);
  c->tls = ssl.SSL_new(ssl.ctx);
  struct in6_addr ip;
  int is_ip = inet_pton(AF_INET, tcfg->tls_server_name, &ip) == 1 || inet_pton(AF_INET6, tcfg->tls_server_name, &ip) == 1;
  if (!c->tls || ssl.SSL_set_fd(c->tls, c->fd) != 1 ||
      (is_ip ? ssl.X509_VERIFY_PARAM_set1_ip_asc(ssl.SSL_get0_param(c->tls), tcfg->tls_server_name) != 1
             : ssl.SSL_set1_host(c->tls, tcfg->tls_server_name) != 1 ||
                   ssl.SSL_ctrl(c->tls, SSL_CTRL_SET_TLSEXT_HOSTNAME, 0, (void *)tcfg->tls_server_name) != 1)) {
    tls_error(err, errlen, "cannot set up TLS");
    conn_close(c);
    return -1;
  }
  if (ssl.SSL_connect(c->tls) != 1) {
    long v = ssl.SSL_get_verify_result(c->tls);
    if (v != 0) snprintf(err, errlen, "TLS handshake with the gateway failed: certificate: %s", ssl.X509_verify_cert_error_string(v));
    else tls_error(err, errlen, "TLS handshake with the gateway failed");
    conn_close(c);
    return -1;
  }
  return 0;
}

/* Writes all of buf. TLS writes go through write(2) inside libssl, so SIGPIPE is held
 * back on this thread and any pending one discarded: a gateway hanging up must not kill the
 * application. */
static int conn_write(conn_t *c, const uint8_t *buf, size_t len) {
  if (!c->tls) {
    while (len > 0) {
      ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return -1;
      buf += n, len -= (size_t)n;
    }
    return 0;
  }
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int rc = 0;
  while (len > 0 && rc == 0) {
    int n = ssl.SSL_write(c->tls, buf, len > 1 << 30 ? 1 << 30 : (int)len);
    if (n <= 0) rc = -1;
    else buf += n, len -= (size_t)n;
  }
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* Reads exactly len bytes; returns bytes read before EOF/error if short. */
static size_t conn_read(conn_t *c, uint8_t *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n;
    if (c->tls) n = ssl.SSL_read(c->tls, buf + got, len - got > 1 << 30 ? 1 << 30 : (int)(len - got));
    else n = recv(c->fd, buf + got, len - got, 0);
    if (n < 0 && errno == EINTR && !c->tls) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

int transport_init(const config_t *cfg, char *err, size_t errlen) {
  tcfg = cfg;
  pool_n = 0;
  pthread_mutex_init(&pool_lock, NULL);
  if (cfg->tls && !ssl.ctx) return tls_load(cfg, err, errlen);
  return 0;
}

void transport_shutdown(int after_fork) {
  for (int i = 0; i < pool_n; i++) {
    if (after_fork) {
      close(pool[i].fd); /* the parent's TLS state is not ours to touch */
    } else {
      conn_close(&pool[i]);
    }
  }
  pool_n = 0;
  /* The next C_Initialize may name other CA certificates. */
  if (ssl.ctx && !after_fork) ssl.SSL_CTX_free(ssl.ctx);
  ssl.ctx = NULL;
}

static void drop_idle(void) {
  pthread_mutex_lock(&pool_lock);
  while (pool_n > 0) conn_close(&pool[--pool_n]);
  pthread_mutex_unlock(&pool_lock);
}

static int take_idle(conn_t *out) {
  pthread_mutex_lock(&pool_lock);
  time_t now = time(NULL);
  int found = 0;
  while (pool_n > 0 && !found) {
    conn_t c = pool[--pool_n];
    if (now - c.idle_since < POOL_IDLE_SECONDS) *out = c, found = 1;
    else conn_close(&c);
  }
  pthread_mutex_unlock(&pool_lock);
  return found;
}

static void give_back(conn_t *c) {
  pthread_mutex_lock(&pool_lock);
  if (pool_n < POOL_MAX) {
    c->idle_since = time(NULL);
    pool[pool_n++] = *c;
  } else {
    conn_close(c);
  }
  pthread_mutex_unlock(&pool_lock);
}

/* One request/response exchange. Returns 0 and a malloc'ed response, or -1 with err set.
 * A pooled connection the gateway has since closed fails before any response byte; such a
 * request is sent again on a fresh connection when `idempotent`. One that must not be sent
 * twice takes no pooled connection: the gateway closes idle ones (sooner before a login,
 * gateway config pkcs11PreLoginIdleMs), and a write into one it just closed could not be retried. */
int transport_call(const uint8_t *req, size_t req_len, int timeout_ms, int idempotent, uint8_t **resp, size_t *resp_len,
                   char *err, size_t errlen) {
  int64_t deadline = now_ms() + timeout_ms;
  uint8_t *frame = malloc(req_len + 4);
  if (!frame) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  frame[0] = (uint8_t)(req_len >> 24), frame[1] = (uint8_t)(req_len >> 16), frame[2] = (uint8_t)(req_len >> 8), frame[3] = (uint8_t)req_len;
  memcpy(frame + 4, req, req_len);
  int rc = -1;
  for (int attempt = 0; attempt < 2 && rc != 0; attempt++) {
    conn_t c;
    int reused = idempotent && take_idle(&c);
    if (!reused && conn_open(&c, deadline, err, errlen)) break;
    set_timeouts(c.fd, deadline);
    uint8_t hdr[4];
    size_t got = 0;
    if (conn_write(&c, frame, req_len + 4) == 0) got = conn_read(&c, hdr, 4);
    if (got < 4) {
      int timed_out = now_ms() >= deadline;
      snprintf(err, errlen, "%s the gateway at %s:%s", timed_out ? "no answer within the timeout from" : "lost the connection to", tcfg->host, tcfg->port);
      conn_close(&c);
      /* A pooled connection that died unanswered means the gateway went away (a restart):
       * its idle siblings are as dead, so drop them all and go again on a fresh one. */
      if (reused && got == 0 && idempotent && !timed_out) {
        drop_idle();
        continue;
      }
      break;
    }
    size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    uint8_t *body = n <= WIRE_MAX ? malloc(n ? n : 1) : NULL;
    if (!body) {
      snprintf(err, errlen, "the gateway sent a frame of %zu bytes (limit %d)", n, WIRE_MAX);
      conn_close(&c);
      break;
    }
    if (conn_read(&c, body, n) < n) {
      snprintf(err, errlen, "%s the gateway at %s:%s", now_ms() >= deadline ? "no answer within the timeout from" : "lost the connection to", tcfg->host, tcfg->port);
      free(body);
      conn_close(&c);
      break;
    }
    give_back(&c);
    *resp = body;
    *resp_len = n;
    rc = 0;
  }
  explicit_bzero(frame, req_len + 4); /* a login request carries a PIN */
  free(frame);
  return rc;
}
