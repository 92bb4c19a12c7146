/* The module's configuration file, named by MPCHSM_PKCS11_CONF: `key = value` lines, `#`
 * comments. Keys:
 *   gateway          = HOST:PORT or [IPV6]:PORT    (required)
 *   log              = PATH of the module's log file (default: stderr)
 *   log_level        = info | debug
 *   timeout          = seconds one request may take (default 60)
 *   keygen_timeout   = seconds a key generation may take (default 1200; RSA ceremonies are slow)
 *   connect_timeout  = seconds to reach the gateway (default 5)
 *   tls              = off | on                     (on: TLS through the system's libssl)
 *   tls_ca           = PATH of the CA bundle that signs the gateway's certificate
 *   tls_server_name  = the name the certificate must carry (default: the gateway host)
 *   key_types        = the key types applications see, among rsa, ec, ec_edwards (default:
 *                      all). libp11 before 0.4.13 (Debian 12's OpenSSL engine) gives up
 *                      enumerating keys at the first Edwards key; its applications use
 *                      `key_types = rsa ec`.
 * Anything else is an error, so a typo never silently changes behaviour. */
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(config_t *c, int line, const char *fmt, ...) {
  if (c->error[0]) return; /* report the first problem */
  int n = line > 0 ? snprintf(c->error, sizeof c->error, "%s:%d: ", c->path, line) : snprintf(c->error, sizeof c->error, "%s: ", c->path);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error + n, sizeof c->error - (size_t)n, fmt, ap);
  va_end(ap);
}

static int copy(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n == 0 || n >= cap) return -1;
  memcpy(dst, src, n + 1);
  return 0;
}

static int seconds(const char *v, int min, int max, int *out_ms) {
  char *end;
  errno = 0;
  long s = strtol(v, &end, 10);
  if (errno || *end || end == v || s < min || s > max) return -1;
  *out_ms = (int)s * 1000;
  return 0;
}

static int parse_gateway(config_t *c, const char *v) {
  const char *colon;
  if (v[0] == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':') return -1;
    size_t n = (size_t)(close - v - 1);
    if (n == 0 || n >= sizeof c->host) return -1;
    memcpy(c->host, v + 1, n);
    c->host[n] = 0;
    colon = close + 1;
  } else {
    colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof c->host) return -1;
    memcpy(c->host, v, (size_t)(colon - v));
    c->host[colon - v] = 0;
  }
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || end == colon + 1 || port < 1 || port > 65535) return -1;
  snprintf(c->port, sizeof c->port, "%ld", port);
  return 0;
}

static void set(config_t *c, int line, const char *key, const char *v) {
  if (!strcmp(key, "gateway")) {
    if (parse_gateway(c, v)) fail(c, line, "gateway must be HOST:PORT (or [IPV6]:PORT), not '%s'", v);
  } else if (!strcmp(key, "log")) {
    if (copy(c->log_path, sizeof c->log_path, v)) fail(c, line, "log path is empty or too long");
  } else if (!strcmp(key, "log_level")) {
    if (!strcmp(v, "debug")) c->log_debug = 1;
    else if (!strcmp(v, "info")) c->log_debug = 0;
    else fail(c, line, "log_level must be info or debug, not '%s'", v);
  } else if (!strcmp(key, "timeout")) {
    if (seconds(v, 1, 3600, &c->timeout_ms)) fail(c, line, "timeout must be 1..3600 seconds, not '%s'", v);
  } else if (!strcmp(key, "keygen_timeout")) {
    if (seconds(v, 1, 7200, &c->keygen_timeout_ms)) fail(c, line, "keygen_timeout must be 1..7200 seconds, not '%s'", v);
  } else if (!strcmp(key, "connect_timeout")) {
    if (seconds(v, 1, 300, &c->connect_timeout_ms)) fail(c, line, "connect_timeout must be 1..300 seconds, not '%s'", v);
  } else if (!strcmp(key, "tls")) {
    if (!strcmp(v, "on")) c->tls = 1;
    else if (!strcmp(v, "off")) c->tls = 0;
    else fail(c, line, "tls must be on or off, not '%s'", v);
  } else if (!strcmp(key, "tls_ca")) {
    if (copy(c->tls_ca, sizeof c->tls_ca, v)) fail(c, line, "tls_ca path is empty or too long");
  } else if (!strcmp(key, "tls_server_name")) {
    if (copy(c->tls_server_name, sizeof c->tls_server_name, v)) fail(c, line, "tls_server_name is empty or too long");
  } else if (!strcmp(key, "key_types")) {
    c->key_types = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save, *w = strtok_r(buf, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
      if (!strcmp(w, "rsa")) c->key_types |= KEY_TYPE_RSA;
      else if (!strcmp(w, "ec")) c->key_types |= KEY_TYPE_EC;
      else if (!strcmp(w, "ec_edwards")) c->key_types |= KEY_TYPE_EC_EDWARDS;
      else fail(c, line, "key_types: unknown key type '%s' (rsa, ec, ec_edwards)", w);
    }
    if (!c->key_types) fail(c, line, "key_types names no key type");
  } else {
    fail(c, line, "unknown setting '%s'", key);
  }
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

int config_load(config_t *c) {
  memset(c, 0, sizeof *c);
  c->timeout_ms = 60000;
  c->keygen_timeout_ms = 1200000;
  c->connect_timeout_ms = 5000;
  c->key_types = KEY_TYPE_RSA | KEY_TYPE_EC | KEY_TYPE_EC_EDWARDS;
  const char *path = getenv("MPCHSM_PKCS11_CONF");
  if (!path || !*path) {
    snprintf(c->error, sizeof c->error, "MPCHSM_PKCS11_CONF is not set: it must name the module's configuration file");
    return -1;
  }
  snprintf(c->path, sizeof c->path, "%s", path);
  FILE *f = fopen(path, "re");
  if (!f) {
    fail(c, 0, "cannot read the configuration: %s", strerror(errno));
    return -1;
  }
  char buf[4096];
  int line = 0;
  while (fgets(buf, sizeof buf, f)) {
    line++;
    if (!strchr(buf, '\n') && !feof(f)) {
      fail(c, line, "line too long");
      break;
    }
    char *s = trim(buf);
    if (!*s || *s == '#') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fail(c, line, "expected 'key = value', got '%.80s'", s);
      continue;
    }
    *eq = 0;
    set(c, line, trim(s), trim(eq + 1));
  }
  fclose(f);
  if (!c->error[0] && !c->host[0]) fail(c, 0, "no 'gateway = HOST:PORT' line");
  if (!c->error[0] && c->tls && !c->tls_server_name[0]) snprintf(c->tls_server_name, sizeof c->tls_server_name, "%s", c->host);
  if (!c->error[0] && !c->tls && (c->tls_ca[0] || c->tls_server_name[0])) fail(c, 0, "tls_ca/tls_server_name given but tls is not on");
  return c->error[0] ? -1 : 0;
}
