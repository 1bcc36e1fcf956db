/*
 * Weak fallbacks for entry points of parts that have not landed yet. Each
 * real definition overrides its fallback at link time; this file goes away
 * once all of them exist.
 */
#include "block/block.h"
#include "hw/tpm/tpm_backend.h"
#include "monitor/monitor.h"
#include "util/error.h"

static void not_built(GError **errp, const char *what)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "%s is not built yet in this tpmvm (its part has not landed)", what);
}

__attribute__((weak)) bool monitor_new_from_string(const char *optstr, GError **errp)
{
    not_built(errp, "the monitor (QMP/HMP)");
    return false;
}

__attribute__((weak)) bool monitor_new_qmp(const char *spec, bool pretty, GError **errp)
{
    not_built(errp, "the QMP monitor");
    return false;
}

__attribute__((weak)) bool monitor_new_hmp(const char *spec, GError **errp)
{
    not_built(errp, "the human monitor (HMP)");
    return false;
}

/* Without a monitor nobody listens to events: dropping them is correct. */
__attribute__((weak)) void qmp_send_event(const char *name, JsonObject *data)
{
    if (data) {
        json_object_unref(data);
    }
}

__attribute__((weak)) BlockDriverState *drive_new_from_string(const char *optstr,
                                                              GError **errp)
{
    not_built(errp, "the block layer (-drive)");
    return NULL;
}

__attribute__((weak)) BlockDriverState *blockdev_new_from_string(const char *optstr,
                                                                 GError **errp)
{
    not_built(errp, "the block layer (-blockdev)");
    return NULL;
}

__attribute__((weak)) void drive_close_all(void)
{
}

__attribute__((weak)) TPMBackend *
tpm_backend_create_from_string(const char *optstr, bool *help_printed, GError **errp)
{
    if (help_printed) {
        *help_printed = false;
    }
    not_built(errp, "TPM backend support (-tpmdev)");
    return NULL;
}

__attribute__((weak)) void tpm_backend_destroy_all(void)
{
}
