/*
 * The main loop (GLib's default context) and the big lock.
 *
 * The main thread runs the GLib main loop and holds the big lock except while
 * it polls. vCPU threads and the qtest server take the lock around device
 * access. The TPM worker never takes it: it posts completions to the main
 * loop with main_loop_call().
 */
#ifndef SYSTEM_MAIN_LOOP_H
#define SYSTEM_MAIN_LOOP_H

#include <stdbool.h>
#include <glib.h>
#include <glib-unix.h>

void main_loop_init(void);
/* Run until a shutdown request; returns the exit status. */
int main_loop_run(void);
/* Run one iteration (used by synchronous waits in the main thread). */
void main_loop_iterate(bool may_block);
/* Schedule fn(data) in the main loop; callable from any thread. */
void main_loop_call(GSourceFunc fn, gpointer data);
/* Wake a blocked poll. */
void main_loop_notify(void);
/*
 * Watch fd for `cond` in the main loop (g_unix_fd_add without its cost: see
 * main-loop.c); any thread. Remove with g_source_remove().
 */
guint main_loop_add_fd(int fd, GIOCondition cond, GUnixFDSourceFunc fn, gpointer data);

void bql_lock(void);
void bql_unlock(void);
bool bql_locked(void);

#endif
