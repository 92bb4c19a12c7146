/* The module's log: one JSON object per line in pino's shape (level as a number, time in ms
 * since the epoch, pid, msg), as the gateway and the signers log, so one set of tools reads all
 * of them; a refusal also names the gateway's requestId, which its audit entries carry. Appended
 * to the configured file (stderr until a configuration names one); each line is a single
 * write(2) on an O_APPEND descriptor, so threads and processes sharing the file never interleave
 * within a line. Never logs a PIN or a session credential. */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static int log_debug;

int log_open(const char *path, int debug) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  if (log_fd >= 0) close(log_fd);
  log_fd = fd;
  log_debug = debug;
  return 0;
}

void log_close(void) {
  if (log_fd >= 0) close(log_fd);
  log_fd = -1;
  log_debug = 0;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : 0;
  if (len == 0 || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return len;
}

/* Appends s as the inside of a JSON string, whole characters only, while room is left before
 * `end`. Text from the gateway is escaped like the module's own: quotes, backslashes and control
 * characters cannot end the string or the line, and bytes that are not UTF-8 become '?'. */
static char *json_text(char *at, const char *end, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    char unit[8];
    size_t len = 1, step = 1;
    if (p[i] == '"' || p[i] == '\\') unit[0] = '\\', unit[1] = (char)p[i], len = 2;
    else if (p[i] < 0x20) len = (size_t)snprintf(unit, sizeof unit, "\\u%04x", p[i]);
    else if (p[i] < 0x80) unit[0] = (char)p[i];
    else if ((step = utf8_len(p + i, n - i)) > 0) memcpy(unit, p + i, step), len = step;
    else unit[0] = '?', step = 1;
    if (at + len > end) break;
    memcpy(at, unit, len);
    at += len;
    i += step;
  }
  return at;
}

static void log_line(int level, const char *request_id, size_t request_id_len, const char *fmt, va_list ap) {
  static const int levels[] = {20, 30, 40, 50}; /* pino's debug, info, warn, error */
  if (level == LOG_DEBUG && !log_debug) return;
  char msg[1536], line[2048];
  int m = vsnprintf(msg, sizeof msg, fmt, ap);
  size_t msg_len = m < 0 ? 0 : (size_t)m >= sizeof msg ? sizeof msg - 1 : (size_t)m;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const char *end = line + sizeof line - 3; /* room for "}\n */
  char *at = line + snprintf(line, sizeof line, "{\"level\":%d,\"time\":%lld,\"pid\":%d,\"name\":\"mpchsm-pkcs11\",",
                             levels[level], (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)getpid());
  if (request_id && request_id_len > 0) {
    at = json_text(at + sprintf(at, "\"requestId\":\""), end - 64, request_id, request_id_len > 64 ? 64 : request_id_len);
    at += sprintf(at, "\",");
  }
  at = json_text(at + sprintf(at, "\"msg\":\""), end, msg, msg_len);
  memcpy(at, "\"}\n", 3);
  ssize_t w = write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, (size_t)(at + 3 - line));
  (void)w;
}

void log_msg(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_line(level, NULL, 0, fmt, ap);
  va_end(ap);
}

void log_request(int level, const char *request_id, size_t request_id_len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_line(level, request_id, request_id_len, fmt, ap);
  va_end(ap);
}
