/* The gateway wire's value encoding (see gateway/p11/wire.ts, the other end):
 *   0x01 uint   8 bytes, big-endian
 *   0x02 bytes  4-byte big-endian length, then the bytes
 *   0x03 list   4-byte big-endian count, then that many values
 * A frame on the socket is a 4-byte big-endian length and one value (a list). */
#include "remote.h"

#include <stdlib.h>
#include <string.h>

static void reserve(wbuf *w, size_t more) {
  if (w->oom) return;
  if (w->len + more <= w->cap) return;
  size_t cap = w->cap ? w->cap : 256;
  while (cap < w->len + more) cap *= 2;
  uint8_t *p = realloc(w->data, cap);
  if (!p) {
    w->oom = 1;
    return;
  }
  w->data = p;
  w->cap = cap;
}

static void put_be(wbuf *w, uint64_t v, int n) {
  reserve(w, (size_t)n);
  if (w->oom) return;
  for (int i = n - 1; i >= 0; i--) w->data[w->len++] = (uint8_t)(v >> (8 * i));
}

void wb_uint(wbuf *w, uint64_t v) {
  put_be(w, WIRE_UINT, 1);
  put_be(w, v, 8);
}

void wb_raw(wbuf *w, const void *p, size_t n) {
  reserve(w, n);
  if (w->oom || n == 0) return;
  memcpy(w->data + w->len, p, n);
  w->len += n;
}

void wb_bytes(wbuf *w, const void *p, size_t n) {
  if (n > WIRE_MAX) {
    w->oom = 1;
    return;
  }
  put_be(w, WIRE_BYTES, 1);
  put_be(w, n, 4);
  wb_raw(w, p, n);
}

void wb_str(wbuf *w, const char *s) { wb_bytes(w, s, s ? strlen(s) : 0); }

void wb_list(wbuf *w, uint32_t count) {
  put_be(w, WIRE_LIST, 1);
  put_be(w, count, 4);
}

void wb_free(wbuf *w) {
  free(w->data);
  memset(w, 0, sizeof *w);
}

static int get_be(rbuf *r, int n, uint64_t *out) {
  if (r->err || r->len - r->pos < (size_t)n) return r->err = -1;
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | r->p[r->pos++];
  *out = v;
  return 0;
}

static int tag(rbuf *r, int want) {
  uint64_t t;
  if (get_be(r, 1, &t)) return -1;
  if (t != (uint64_t)want) return r->err = -1;
  return 0;
}

int rd_uint(rbuf *r, uint64_t *v) { return tag(r, WIRE_UINT) || get_be(r, 8, v) ? -1 : 0; }

int rd_bytes(rbuf *r, const uint8_t **p, size_t *n) {
  uint64_t len;
  if (tag(r, WIRE_BYTES) || get_be(r, 4, &len)) return -1;
  if (r->len - r->pos < len) return r->err = -1;
  *p = r->p + r->pos;
  *n = (size_t)len;
  r->pos += (size_t)len;
  return 0;
}

int rd_list(rbuf *r, uint32_t *count) {
  uint64_t n;
  if (tag(r, WIRE_LIST) || get_be(r, 4, &n)) return -1;
  /* Every value takes at least 5 bytes: a count beyond what is left is a lie. */
  if (n > (r->len - r->pos) / 5) return r->err = -1;
  *count = (uint32_t)n;
  return 0;
}

char *rd_strdup(rbuf *r) {
  const uint8_t *p;
  size_t n;
  if (rd_bytes(r, &p, &n)) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, p, n);
  s[n] = 0;
  return s;
}
