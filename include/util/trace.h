/*
 * Trace points: trace_event("tpm_tis_mmio_read", "locty=%d addr=0x%x", ...).
 * Off by default; `-trace PATTERN` / `-d trace:PATTERN` enable every event whose
 * name matches a glob pattern. A disabled point costs one load and a branch.
 */
#ifndef UTIL_TRACE_H
#define UTIL_TRACE_H

#include <stdbool.h>
#include <stdio.h>
#include <glib.h>

typedef struct TraceEvent {
    const char *name;
    int generation; /* trace_generation at which `enabled` was computed */
    bool enabled;
} TraceEvent;

extern int trace_generation; /* 0: tracing never enabled, all points off */

/* Enable events matching a glob pattern ("tpm_tis_*"); "-pat" disables. */
void trace_enable_pattern(const char *pattern);
/* Where trace lines go (default stderr). Takes ownership of fp. */
void trace_set_output(FILE *fp);
bool trace_event_check(TraceEvent *ev);
void trace_emit(const char *name, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Names of trace events seen so far (for `-trace help`). */
void trace_list_known(void);

#define trace_event(NAME, FMT, ...)                                                      \
    do {                                                                                 \
        static TraceEvent trace_ev_ = {NAME, 0, false};                                  \
        if (G_UNLIKELY(trace_generation) && trace_event_check(&trace_ev_)) {             \
            trace_emit(NAME, FMT, ##__VA_ARGS__);                                        \
        }                                                                                \
    } while (0)

#endif
