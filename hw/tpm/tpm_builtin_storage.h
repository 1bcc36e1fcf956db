/*
 * Where the built-in TPM keeps its NVRAM: a drive of the block layer, named
 * by drive=ID or opened (and created on first use) from path=FILE. The TPM
 * side only sees a TPMNvramOps medium.
 */
#ifndef HW_TPM_TPM_BUILTIN_STORAGE_H
#define HW_TPM_TPM_BUILTIN_STORAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/tpm/tpm_nvram.h"

typedef struct TPMBuiltinStorage TPMBuiltinStorage;

/*
 * Open the medium of backend `backend_id`: exactly one of drive_id / path.
 * The drive is claimed for the backend; a read-only drive is refused. path=
 * is opened as drive BACKEND-ID-nvram (so snapshots include it) and, when
 * missing, created as a qcow2 of `need` bytes, at least 1 MiB, LUKS-
 * encrypted with key_secret if given.
 */
TPMBuiltinStorage *tpm_builtin_storage_open(const char *drive_id, const char *path,
                                            const char *key_secret, uint64_t need,
                                            const char *backend_id, GError **errp);
void tpm_builtin_storage_close(TPMBuiltinStorage *s);

const TPMNvramOps *tpm_builtin_storage_ops(TPMBuiltinStorage *s);
void *tpm_builtin_storage_opaque(TPMBuiltinStorage *s);
/* "drive 'tpmnv'" or "file 'tpm.qcow2'", for messages. */
const char *tpm_builtin_storage_name(TPMBuiltinStorage *s);
/* Size of the medium in bytes (-1 if unknown). */
int64_t tpm_builtin_storage_size(TPMBuiltinStorage *s);
/* query-tpm options: drive / path. */
void tpm_builtin_storage_get_options(TPMBuiltinStorage *s, GHashTable *kv);

#endif
