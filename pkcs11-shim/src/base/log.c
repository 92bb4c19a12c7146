/* The module's log: one line per event, appended to the configured file (stderr until a
 * configuration names one). Each line is a single write(2) on an O_APPEND descriptor, so
 * threads and processes sharing the file never interleave within a line. Never logs a PIN or
 * a session credential. */
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

void log_msg(int level, const char *fmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level == LOG_DEBUG && !log_debug) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ mpchsm-pkcs11[%d] %s: ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(),
                   names[level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  /* One line per event: control characters from remote reasons cannot forge extra lines. */
  for (size_t i = (size_t)n; i < len; i++)
    if ((unsigned char)line[i] < 0x20) line[i] = ' ';
  line[len++] = '\n';
  ssize_t w = write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, len);
  (void)w;
}
