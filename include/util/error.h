/*
 * Errors: every fallible function takes `GError **errp` last and reports with
 * g_set_error(errp, TPMVM_ERROR, code, ...). The code picks the QMP error class.
 */
#ifndef UTIL_ERROR_H
#define UTIL_ERROR_H

#include <glib.h>

#define TPMVM_ERROR (tpmvm_error_quark())
GQuark tpmvm_error_quark(void);

typedef enum {
    TPMVM_ERROR_GENERIC,           /* QMP "GenericError" */
    TPMVM_ERROR_COMMAND_NOT_FOUND, /* QMP "CommandNotFound" */
    TPMVM_ERROR_DEVICE_NOT_FOUND,  /* QMP "DeviceNotFound" */
    TPMVM_ERROR_DEVICE_NOT_ACTIVE, /* QMP "DeviceNotActive" */
    TPMVM_ERROR_IO,                /* I/O failure; QMP "GenericError" */
    TPMVM_ERROR_CORRUPT,           /* on-disk/in-stream data failed validation */
    TPMVM_ERROR_PERMISSION,        /* wrong passphrase, locked image, read-only */
} TpmvmErrorCode;

/* QMP class name ("GenericError", ...) for an error from any domain. */
const char *error_qmp_class(const GError *err);

/* Set an I/O error from errno value `errnum`, prefixed by the printf message. */
void error_set_errno(GError **errp, int errnum, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#endif
