/*
 * What the rest of tpmvm (monitor, snapshots) may ask about the VM's TPM
 * device without knowing its bus: its model, device id and backend.
 */
#ifndef HW_TPM_TPM_FRONTEND_H
#define HW_TPM_TPM_FRONTEND_H

#include "hw/tpm/tpm_backend.h"

typedef struct TPMFrontendInfo {
    const char *model;  /* "tpm-tis" */
    const char *dev_id; /* -device ...,id=X, or NULL */
    TPMBackend *be;
} TPMFrontendInfo;

/* Call fn for each realized TPM device (a VM has at most one). */
void tpm_frontend_foreach(void (*fn)(const TPMFrontendInfo *info, void *opaque),
                          void *opaque);
/* The TPM device models this build offers, NULL-terminated. */
const char *const *tpm_frontend_models(void);

#endif
