/*
 * The qtest accelerator: no CPUs; the qtest protocol drives the buses and the
 * virtual clock moves only on clock_step/clock_set.
 */
#include "system/accel.h"
#include "system/clock.h"
#include "system/qtest.h"
#include "system/runstate.h"

static const AccelOps qtest_accel_ops = {
    .name = "qtest",
};

static bool qtest_accel_init_machine(MachineState *ms, GError **errp)
{
    qtest_set_enabled(true);
    vclock_set_manual(true);
    accel_set_ops(&qtest_accel_ops);
    return true;
}

static const AccelClass qtest_accel = {
    .name = "qtest",
    .desc = "no CPUs; devices are driven through the qtest protocol (-qtest)",
    .init_machine = qtest_accel_init_machine,
};
ACCEL_TYPE_REGISTER(qtest_accel)
