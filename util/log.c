/*
 * User-facing messages on stderr.
 */
#include <stdio.h>

#include "util/log.h"

static const char *prog_name = "tpmvm";

void log_set_prog_name(const char *name)
{
    prog_name = name;
}

const char *log_prog_name(void)
{
    return prog_name;
}

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    fprintf(stderr, "%s: %s%s\n", prog_name, kind, msg);
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void info_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("info: ", fmt, ap);
    va_end(ap);
}

void error_report_err(GError *err)
{
    if (err) {
        error_report("%s", err->message);
        g_error_free(err);
    }
}

void warn_report_err(GError *err)
{
    if (err) {
        warn_report("%s", err->message);
        g_error_free(err);
    }
}
