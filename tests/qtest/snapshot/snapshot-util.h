/*
 * Helpers for the snapshot tests: a VM with the builtin TPM on a qcow2 drive,
 * TPM commands through the TIS registers exactly as a guest sends them, and
 * a small qcow2 reader that finds (and, for fault tests, damages) the VM
 * state of a snapshot in a plain image.
 */
#ifndef SNAPSHOT_UTIL_H
#define SNAPSHOT_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "libqtest.h"

/* ---- images and VMs ---- */

/* A scratch directory holding pass.txt ("snapshot-test-pass"). */
typedef struct SnapEnv {
    char *dir;
    char *pass_file;
} SnapEnv;

/* NULL (after g_test_skip) when qemu-img is missing. */
SnapEnv *snap_env_new(void);
void snap_env_free(SnapEnv *env);
char *snap_env_path(SnapEnv *env, const char *name);

/* Create a qcow2 image of `size_mb` MiB (LUKS with iter-time 10 if `luks`). */
void snap_image_create(SnapEnv *env, const char *name, bool luks, unsigned size_mb);

/* The -object/-drive/-tpmdev/-device options for a TPM on image `name`. */
char *snap_tpm_args(SnapEnv *env, const char *name, bool luks, const char *version);

/* Run qemu-img with the secret object; returns its exit status, output in *out. */
int snap_qemu_img(SnapEnv *env, char **out, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* The same with $TPMVM_BUILD_DIR/tools/tpmvm-img. */
int snap_tpmvm_img(SnapEnv *env, char **out, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* qemu-img check and tpmvm-img check of image `name` find no errors or leaks. */
void snap_assert_image_clean(SnapEnv *env, const char *name, bool luks);
/* "--image-opts driver=qcow2,file.filename=...[,encrypt.key-secret=sec0]" */
char *snap_image_opts(SnapEnv *env, const char *name, bool luks);

/* HMP command that must succeed (empty output or any non-error text). */
void snap_hmp_ok(QTestState *qts, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* HMP command that must fail; returns the error text (g_free). */
char *snap_hmp_err(QTestState *qts, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* QMP "quit" and wait for a clean exit, then free qts. */
void snap_quit(QTestState *qts);
/* query-status "status" (g_free). */
char *snap_status(QTestState *qts);
/* JOB_STATUS_CHANGE statuses of job `id`, comma-separated, up to `last` (g_free). */
char *snap_job_statuses(QTestState *qts, const char *id, const char *last);

/* ---- TPM through the TIS (locality 0) ---- */

/* Take locality 0. */
void tis_claim(QTestState *qts);
/* Make the TPM ready and write bytes [0, len) of a command into the FIFO. */
void tis_write_partial(QTestState *qts, const uint8_t *cmd, size_t len, size_t from);
/* tpmGo. */
void tis_go(QTestState *qts);
/* Wait for dataAvail and read the whole response; leave the TPM ready. */
GBytes *tis_read_response(QTestState *qts);
/* STS of locality 0. */
uint32_t tis_sts(QTestState *qts);
/* Send a command and return the response. */
GBytes *tpm_transmit(QTestState *qts, const uint8_t *cmd, size_t len);
/* The response code of a response. */
uint32_t tpm_rc(GBytes *rsp);

/* TPM 2.0 */
#define TPM2_NV_TEST_INDEX 0x01500016u
GByteArray *tpm2_cmd_startup(void);
GByteArray *tpm2_cmd_pcr_extend(unsigned pcr, uint8_t fill);
GByteArray *tpm2_cmd_pcr_read(unsigned pcr);
GByteArray *tpm2_cmd_nv_define(uint32_t index, uint16_t size);
GByteArray *tpm2_cmd_nv_write(uint32_t index, const uint8_t *data, uint16_t len);
GByteArray *tpm2_cmd_nv_read(uint32_t index, uint16_t len);
GByteArray *tpm2_cmd_create_primary_rsa(void);

/* Run a command that must succeed; returns its response. */
GBytes *tpm2_ok(QTestState *qts, GByteArray *cmd);
void tpm2_startup(QTestState *qts);
void tpm2_extend(QTestState *qts, unsigned pcr, uint8_t fill);
/* The SHA-256 bank value of `pcr` (32 bytes, g_free). */
uint8_t *tpm2_pcr_read(QTestState *qts, unsigned pcr);
void tpm2_nv_define(QTestState *qts, uint16_t size);
void tpm2_nv_write(QTestState *qts, const uint8_t *data, uint16_t len);
/* NV contents (len bytes, g_free). */
uint8_t *tpm2_nv_read(QTestState *qts, uint16_t len);

/* TPM 1.2 */
void tpm12_startup(QTestState *qts);
void tpm12_extend(QTestState *qts, unsigned pcr, uint8_t fill);
uint8_t *tpm12_pcr_read(QTestState *qts, unsigned pcr); /* 20 bytes */

#define TPM_RC_SUCCESS 0x000
#define TPM_RC_INITIALIZE 0x100

/* ---- qcow2 (plain images only) ---- */

/* The VM state of snapshot `tag` as stored (NULL if none). */
GByteArray *qcow2_read_vmstate(const char *path, const char *tag);
/* Write `data` back over the VM state of `tag` (same length). */
void qcow2_write_vmstate(const char *path, const char *tag, const GByteArray *data);
/* Set the vm_state_size of `tag` in the snapshot table (both fields). */
void qcow2_set_vm_state_size(const char *path, const char *tag, uint64_t size);
/* Recompute the CRC-32 in the header of a VM state (docs/snapshots.md). */
void snap_vmstate_fix_crc(GByteArray *vmstate);
/*
 * Offset in the VM state of the payload of section `name`; *len gets its
 * length and *version_pos the offset of its version field. -1 if absent.
 */
int64_t snap_vmstate_find_section(const GByteArray *vmstate, const char *name,
                                  uint64_t *len, uint64_t *version_pos);

#endif
