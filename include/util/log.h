/*
 * Messages for the user on stderr, prefixed with the program name like QEMU's
 * error_report(): "tpmvm: -drive file=x: Could not open 'x': No such file".
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

#include <glib.h>

/* Program name used as message prefix (default "tpmvm"). */
void log_set_prog_name(const char *name);
const char *log_prog_name(void);

void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void info_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Report and free an error (no-op on NULL). */
void error_report_err(GError *err);
void warn_report_err(GError *err);

#endif
