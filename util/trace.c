/*
 * Trace points, enabled by glob patterns. See include/util/trace.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/trace.h"

int trace_generation;
static GPtrArray *patterns; /* char*, "-" prefix = disable */
static GHashTable *known;   /* names seen */
static FILE *trace_out;
static GMutex trace_lock;

void trace_enable_pattern(const char *pattern)
{
    g_mutex_lock(&trace_lock);
    if (!patterns) {
        patterns = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(patterns, g_strdup(pattern));
    trace_generation++;
    g_mutex_unlock(&trace_lock);
}

void trace_set_output(FILE *fp)
{
    g_mutex_lock(&trace_lock);
    if (trace_out && trace_out != stderr) {
        fclose(trace_out);
    }
    trace_out = fp;
    g_mutex_unlock(&trace_lock);
}

bool trace_event_check(TraceEvent *ev)
{
    int gen = trace_generation;

    if (ev->generation != gen) {
        bool on = false;

        g_mutex_lock(&trace_lock);
        if (!known) {
            known = g_hash_table_new(g_str_hash, g_str_equal);
        }
        g_hash_table_add(known, (gpointer)ev->name);
        for (guint i = 0; patterns && i < patterns->len; i++) {
            const char *p = g_ptr_array_index(patterns, i);
            bool neg = p[0] == '-';
            if (g_pattern_match_simple(neg ? p + 1 : p, ev->name)) {
                on = !neg;
            }
        }
        ev->enabled = on;
        ev->generation = gen;
        g_mutex_unlock(&trace_lock);
    }
    return ev->enabled;
}

void trace_emit(const char *name, const char *fmt, ...)
{
    va_list ap;
    struct timespec ts;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    g_mutex_lock(&trace_lock);
    fprintf(trace_out ? trace_out : stderr, "%ld.%06ld %s %s\n", (long)ts.tv_sec,
            ts.tv_nsec / 1000, name, msg);
    g_mutex_unlock(&trace_lock);
}

void trace_list_known(void)
{
    printf("Trace events are named <part>_<event>, for example:\n"
           "  tpm_tis_mmio_read tpm_tis_mmio_write tpm_tis_cmd_start tpm_tis_cmd_done\n"
           "  tpm_builtin_* tpm_nvram_* qcow2_* kvm_* qtest_* qmp_*\n"
           "Enable with -trace 'PATTERN' (glob; '-PATTERN' disables), "
           "-trace file=PATH sends the lines to a file.\n");
}
