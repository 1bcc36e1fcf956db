/*
 * The virtual clock and timers. See include/system/clock.h.
 */
#include "system/clock.h"

#include <glib.h>

struct VTimer {
    VTimerFn fn;
    void *opaque;
    int64_t expire_ns;
    bool pending;
};

static GList *active_timers; /* VTimer*, sorted by expire_ns */
static bool manual;
static int64_t manual_now;
/* automatic mode: virtual ns = base_ns + (monotonic now - run_start) while running */
static int64_t base_ns;
static int64_t run_start_ns;
static bool running;
static guint fire_source;

static int64_t host_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

int64_t vclock_get_ns(void)
{
    if (manual) {
        return manual_now;
    }
    return running ? base_ns + (host_ns() - run_start_ns) : base_ns;
}

void vclock_set_manual(bool on)
{
    manual_now = vclock_get_ns();
    manual = on;
}

bool vclock_is_manual(void)
{
    return manual;
}

void vclock_set_running(bool run)
{
    if (run == running) {
        return;
    }
    base_ns = vclock_get_ns();
    run_start_ns = host_ns();
    running = run;
}

static void vclock_rearm(void);

static void timers_run_due(int64_t now)
{
    while (active_timers) {
        VTimer *t = active_timers->data;
        if (t->expire_ns > now) {
            break;
        }
        active_timers = g_list_delete_link(active_timers, active_timers);
        t->pending = false;
        if (manual && t->expire_ns > manual_now) {
            manual_now = t->expire_ns;
        }
        t->fn(t->opaque);
    }
}

static gboolean vclock_fire(gpointer opaque)
{
    fire_source = 0;
    if (!manual) {
        timers_run_due(vclock_get_ns());
    }
    vclock_rearm();
    return G_SOURCE_REMOVE;
}

/* Automatic mode: a GLib timeout for the earliest deadline. */
static void vclock_rearm(void)
{
    int64_t delta_ms;

    if (fire_source) {
        g_source_remove(fire_source);
        fire_source = 0;
    }
    if (manual || !running || !active_timers) {
        return;
    }
    delta_ms =
        (((VTimer *)active_timers->data)->expire_ns - vclock_get_ns() + 999999) / 1000000;
    fire_source = g_timeout_add((guint)CLAMP(delta_ms, 0, G_MAXINT), vclock_fire, NULL);
}

VTimer *vtimer_new(VTimerFn fn, void *opaque)
{
    VTimer *t = g_new0(VTimer, 1);

    t->fn = fn;
    t->opaque = opaque;
    return t;
}

static gint timer_cmp(gconstpointer a, gconstpointer b)
{
    const VTimer *x = a, *y = b;

    return x->expire_ns < y->expire_ns ? -1 : x->expire_ns > y->expire_ns;
}

void vtimer_del(VTimer *t)
{
    if (t && t->pending) {
        active_timers = g_list_remove(active_timers, t);
        t->pending = false;
    }
}

void vtimer_mod(VTimer *t, int64_t expire_ns)
{
    vtimer_del(t);
    t->expire_ns = expire_ns;
    t->pending = true;
    active_timers = g_list_insert_sorted(active_timers, t, timer_cmp);
    vclock_rearm();
}

bool vtimer_pending(const VTimer *t)
{
    return t->pending;
}

int64_t vtimer_expire_ns(const VTimer *t)
{
    return t->expire_ns;
}

void vtimer_free(VTimer *t)
{
    if (t) {
        vtimer_del(t);
        g_free(t);
    }
}

int64_t vclock_next_deadline(void)
{
    return active_timers ? ((VTimer *)active_timers->data)->expire_ns : -1;
}

void vclock_advance_to(int64_t ns)
{
    if (!manual || ns <= manual_now) {
        timers_run_due(manual_now);
        return;
    }
    timers_run_due(ns);
    manual_now = ns;
}
