/*
 * The main loop and the big lock: the main thread gives the lock up while it
 * polls, main_loop_call runs work in the main thread with the lock held, and
 * the virtual clock's timers fire in order.
 */
#include "system/clock.h"
#include "system/main-loop.h"

static gint other_thread_got_lock;
static gint call_ran_with_lock;
static GThread *main_thread;

static gpointer take_lock_thread(gpointer data)
{
    g_assert_false(bql_locked());
    /* only possible while the main thread sits in poll() */
    bql_lock();
    g_assert_true(bql_locked());
    g_atomic_int_set(&other_thread_got_lock, 1);
    bql_unlock();
    main_loop_notify();
    return NULL;
}

static gboolean fail_timeout(gpointer data)
{
    g_error("%s: timed out", (const char *)data);
    return G_SOURCE_REMOVE;
}

static void test_lock_released_while_polling(void)
{
    GThread *t;
    guint guard = g_timeout_add_seconds(20, fail_timeout, "lock never released");

    g_assert_true(bql_locked());
    t = g_thread_new("locker", take_lock_thread, NULL);
    while (!g_atomic_int_get(&other_thread_got_lock)) {
        main_loop_iterate(true);
    }
    g_thread_join(t);
    g_assert_true(bql_locked());
    g_source_remove(guard);
}

static gboolean record_call(gpointer data)
{
    /* runs in the main thread, which holds the big lock outside poll */
    g_assert_true(g_thread_self() == main_thread);
    g_assert_true(bql_locked());
    g_atomic_int_add(&call_ran_with_lock, GPOINTER_TO_INT(data));
    return G_SOURCE_REMOVE;
}

static gpointer call_from_thread(gpointer data)
{
    for (int i = 0; i < 100; i++) {
        main_loop_call(record_call, GINT_TO_POINTER(1));
    }
    return NULL;
}

static void test_call_from_any_thread(void)
{
    GThread *t[4];
    guint guard = g_timeout_add_seconds(20, fail_timeout, "calls never ran");

    for (int i = 0; i < 4; i++) {
        t[i] = g_thread_new("caller", call_from_thread, NULL);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(t[i]);
    }
    while (g_atomic_int_get(&call_ran_with_lock) < 400) {
        main_loop_iterate(true);
    }
    /* each call runs exactly once */
    main_loop_iterate(false);
    g_assert_cmpint(g_atomic_int_get(&call_ran_with_lock), ==, 400);
    g_source_remove(guard);
}

static GString *fired;

static void timer_cb(void *opaque)
{
    g_string_append_printf(fired, "%s@%" G_GINT64_FORMAT ";", (const char *)opaque,
                           vclock_get_ns());
}

static VTimer *rearming;
static int rearm_count;

static void rearm_cb(void *opaque)
{
    if (++rearm_count < 3) {
        vtimer_mod(rearming, vclock_get_ns() + 10);
    }
}

static void test_manual_clock_fires_timers_in_order(void)
{
    VTimer *a = vtimer_new(timer_cb, "a");
    VTimer *b = vtimer_new(timer_cb, "b");
    VTimer *c = vtimer_new(timer_cb, "c");
    int64_t t0;

    fired = g_string_new(NULL);
    vclock_set_manual(true);
    t0 = vclock_get_ns();
    g_assert_cmpint(vclock_next_deadline(), ==, -1);
    vtimer_mod(b, t0 + 200);
    vtimer_mod(a, t0 + 100);
    vtimer_mod(c, t0 + 300);
    g_assert_true(vtimer_pending(a));
    g_assert_cmpint(vclock_next_deadline(), ==, t0 + 100);
    vtimer_del(c);
    g_assert_false(vtimer_pending(c));
    vclock_advance_to(t0 + 150);
    g_assert_cmpint(vclock_get_ns(), ==, t0 + 150);
    vclock_advance_to(t0 + 1000);
    {
        g_autofree char *want = g_strdup_printf(
            "a@%" G_GINT64_FORMAT ";b@%" G_GINT64_FORMAT ";", t0 + 100, t0 + 200);
        g_assert_cmpstr(fired->str, ==, want);
    }
    /* going back is ignored */
    vclock_advance_to(t0);
    g_assert_cmpint(vclock_get_ns(), ==, t0 + 1000);
    /* a timer may re-arm itself from its callback */
    rearming = vtimer_new(rearm_cb, NULL);
    vtimer_mod(rearming, t0 + 1001);
    vclock_advance_to(t0 + 2000);
    g_assert_cmpint(rearm_count, ==, 3);
    g_assert_false(vtimer_pending(rearming));
    vtimer_free(a);
    vtimer_free(b);
    vtimer_free(c);
    vtimer_free(rearming);
    vtimer_free(NULL);
    g_string_free(fired, TRUE);
}

static int auto_fired;

static void auto_cb(void *opaque)
{
    g_assert_true(bql_locked());
    auto_fired++;
}

static void test_running_clock_fires_from_main_loop(void)
{
    VTimer *t = vtimer_new(auto_cb, NULL);
    guint guard = g_timeout_add_seconds(20, fail_timeout, "timer never fired");
    int64_t start;

    vclock_set_manual(false);
    vclock_set_running(true);
    start = vclock_get_ns();
    vtimer_mod(t, start + 5 * 1000 * 1000);
    while (!auto_fired) {
        main_loop_iterate(true);
    }
    g_assert_cmpint(vclock_get_ns(), >=, start + 5 * 1000 * 1000);
    /* a stopped VM's clock stands still */
    vclock_set_running(false);
    start = vclock_get_ns();
    g_usleep(2000);
    g_assert_cmpint(vclock_get_ns(), ==, start);
    vtimer_free(t);
    g_source_remove(guard);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_thread = g_thread_self();
    main_loop_init();
    bql_lock();
    g_test_add_func("/main-loop/bql/released-while-polling",
                    test_lock_released_while_polling);
    g_test_add_func("/main-loop/call/runs-once-in-main-thread-with-lock",
                    test_call_from_any_thread);
    g_test_add_func("/main-loop/clock/manual-fires-timers-in-order",
                    test_manual_clock_fires_timers_in_order);
    g_test_add_func("/main-loop/clock/running-fires-from-main-loop",
                    test_running_clock_fires_from_main_loop);
    return g_test_run();
}
