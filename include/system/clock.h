/*
 * The virtual clock and its timers.
 *
 * Device models measure time (timeouts, delays) on the virtual clock. Under
 * the qtest accelerator it only moves when the test says so (qtest
 * `clock_step` / `clock_set`), which makes timing tests deterministic; under
 * KVM it follows the host's monotonic clock while the VM runs and stands
 * still while it is stopped.
 *
 * Timers fire in the main loop with the big lock held; all functions here are
 * for the main thread (big lock held).
 */
#ifndef SYSTEM_CLOCK_H
#define SYSTEM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct VTimer VTimer;
typedef void (*VTimerFn)(void *opaque);

/* Nanoseconds of virtual time since start-up. */
int64_t vclock_get_ns(void);

VTimer *vtimer_new(VTimerFn fn, void *opaque);
/* Fire once when the virtual clock reaches expire_ns (absolute). */
void vtimer_mod(VTimer *t, int64_t expire_ns);
void vtimer_del(VTimer *t);
bool vtimer_pending(const VTimer *t);
int64_t vtimer_expire_ns(const VTimer *t);
/* Deletes too. NULL is fine. */
void vtimer_free(VTimer *t);

/* Earliest pending deadline, or -1. */
int64_t vclock_next_deadline(void);

/* qtest: the clock moves only through vclock_advance_to(). */
void vclock_set_manual(bool manual);
bool vclock_is_manual(void);
/*
 * Move the clock forward to `ns`, firing due timers in deadline order (the
 * clock reads each timer's deadline while it runs). Going back is ignored.
 */
void vclock_advance_to(int64_t ns);

/* The VM started / stopped (the clock runs only while it runs; not in manual mode). */
void vclock_set_running(bool running);

#endif
