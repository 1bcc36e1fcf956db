/*
 * The main loop and the big lock. See include/system/main-loop.h.
 *
 * The main thread owns GLib's default context. It holds the big lock at all
 * times except inside poll(), so that vCPU threads and other waiters can take
 * the lock while the main thread sleeps. GLib calls our poll function with
 * its own context lock released, which makes the unlock/relock safe.
 */
#include "system/main-loop.h"

#include "system/runstate.h"

/* The big lock: guards device state (see DESIGN.md "Threads"). */
static GMutex big_lock;
static __thread bool big_lock_held;
static GPollFunc default_poll;
static bool main_loop_ready;

void bql_lock(void)
{
    g_assert(!big_lock_held);
    g_mutex_lock(&big_lock);
    big_lock_held = true;
}

void bql_unlock(void)
{
    g_assert(big_lock_held);
    big_lock_held = false;
    g_mutex_unlock(&big_lock);
}

bool bql_locked(void)
{
    return big_lock_held;
}

/* Release the big lock for the duration of the poll so others can run. */
static gint main_loop_poll(GPollFD *fds, guint nfds, gint timeout)
{
    bool held = big_lock_held;
    gint ret;

    if (held) {
        bql_unlock();
    }
    ret = default_poll(fds, nfds, timeout);
    if (held) {
        bql_lock();
    }
    return ret;
}

void main_loop_init(void)
{
    GMainContext *ctx = g_main_context_default();

    if (main_loop_ready) {
        return;
    }
    default_poll = g_main_context_get_poll_func(ctx);
    g_main_context_set_poll_func(ctx, main_loop_poll);
    main_loop_ready = true;
}

void main_loop_iterate(bool may_block)
{
    g_main_context_iteration(NULL, may_block);
}

int main_loop_run(void)
{
    int status;

    while (!runstate_main_loop_should_exit(&status)) {
        g_main_context_iteration(NULL, TRUE);
    }
    return status;
}

typedef struct MainLoopCall {
    GSourceFunc fn;
    gpointer data;
} MainLoopCall;

static gboolean main_loop_call_dispatch(gpointer opaque)
{
    MainLoopCall *c = opaque;

    c->fn(c->data);
    g_free(c);
    return G_SOURCE_REMOVE;
}

void main_loop_call(GSourceFunc fn, gpointer data)
{
    MainLoopCall *c = g_new(MainLoopCall, 1);
    GSource *src = g_idle_source_new();

    c->fn = fn;
    c->data = data;
    /* Completions beat ordinary idle work: they unblock the guest. */
    g_source_set_priority(src, G_PRIORITY_HIGH);
    g_source_set_callback(src, main_loop_call_dispatch, c, NULL);
    g_source_attach(src, NULL);
    g_source_unref(src);
}

void main_loop_notify(void)
{
    g_main_context_wakeup(NULL);
}

/*
 * GLib blocks a non-recursive source while it dispatches: it takes the
 * source's fd out of the poll set and puts it back, and each change signals
 * the context's wakeup eventfd, so every event cost two writes, an extra
 * poll wake-up and a read (half the syscalls of a qtest round trip).
 * Recursion needs a main loop iteration inside a callback, which tpmvm
 * never runs (main_loop_iterate is for the main thread's top level and for
 * tests), so fd sources may say they can recurse.
 */
guint main_loop_add_fd(int fd, GIOCondition cond, GUnixFDSourceFunc fn, gpointer data)
{
    GSource *src = g_unix_fd_source_new(fd, cond);
    guint id;

    g_source_set_can_recurse(src, TRUE);
    g_source_set_callback(src, (GSourceFunc)(void (*)(void))fn, data, NULL);
    id = g_source_attach(src, NULL);
    g_source_unref(src);
    return id;
}
