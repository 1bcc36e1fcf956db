/*
 * Storage of the built-in TPM for builds without a block layer: only the
 * in-memory TPM (no drive= / path=) is available.
 */
#include "hw/tpm/tpm_builtin_storage.h"
#include "util/error.h"

TPMBuiltinStorage *tpm_builtin_storage_open(const char *drive_id, const char *path,
                                            const char *key_secret, uint64_t need,
                                            const char *backend_id, GError **errp)
{
    g_set_error(
        errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
        "this build has no block layer, so the TPM state cannot be kept on a "
        "drive; leave out drive= and path= for a TPM whose state is lost at exit");
    return NULL;
}

void tpm_builtin_storage_close(TPMBuiltinStorage *s)
{
}

const TPMNvramOps *tpm_builtin_storage_ops(TPMBuiltinStorage *s)
{
    return NULL;
}

void *tpm_builtin_storage_opaque(TPMBuiltinStorage *s)
{
    return NULL;
}

const char *tpm_builtin_storage_name(TPMBuiltinStorage *s)
{
    return "memory";
}

int64_t tpm_builtin_storage_size(TPMBuiltinStorage *s)
{
    return -1;
}

void tpm_builtin_storage_get_options(TPMBuiltinStorage *s, GHashTable *kv)
{
}
