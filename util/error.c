/*
 * The project's GError domain and the mapping to QMP error classes.
 */
#include <string.h>

#include "util/error.h"

G_DEFINE_QUARK(tpmvm - error - quark, tpmvm_error)

const char *error_qmp_class(const GError *err)
{
    if (err->domain != TPMVM_ERROR) {
        return "GenericError";
    }
    switch ((TpmvmErrorCode)err->code) {
    case TPMVM_ERROR_COMMAND_NOT_FOUND:
        return "CommandNotFound";
    case TPMVM_ERROR_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
    case TPMVM_ERROR_DEVICE_NOT_ACTIVE:
        return "DeviceNotActive";
    default:
        return "GenericError";
    }
}

void error_set_errno(GError **errp, int errnum, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "%s: %s", msg, g_strerror(errnum));
}
