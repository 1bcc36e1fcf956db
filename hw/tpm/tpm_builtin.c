/*
 * The built-in TPM backend: -tpmdev builtin. libtpms runs in-process
 * (tpm_builtin_lib.c); its state lives in an NVRAM store (tpm_nvram.c) on a
 * drive (tpm_builtin_storage*.c). Commands run on the generic worker thread
 * of tpm_backend.c; start, reset, vmstate and snapshot helpers run on the
 * main thread while no command is in flight.
 */
#include <stdio.h>
#include <string.h>

#include "hw/tpm/tpm_builtin.h"
#include "hw/tpm/tpm_builtin_lib.h"
#include "hw/tpm/tpm_builtin_storage.h"
#include "hw/tpm/tpm_nvram.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

/* Largest blob a vmstate section may carry (bounds memory while loading). */
#define BUILTIN_VMSTATE_MAX_BLOB (16 * 1024 * 1024)
#define BUILTIN_VMSTATE_RUNNING 0x01

typedef struct TPMBuiltin {
    TPMBackend parent; /* first: a TPMBackend * is a TPMBuiltin * */
    TPMVersion version;
    uint32_t buffer_size;
    TPMBuiltinStorage *storage; /* NULL: medium given by tpm_builtin_new() */
    TPMNvram *nv;
    uint64_t commands; /* atomic: written by the worker */
} TPMBuiltin;

static const TPMBackendClass tpm_builtin_class;

/*
 * The backend that owns libtpms. libtpms holds one TPM per process, so a
 * second builtin backend is refused. Main thread only.
 */
static TPMBuiltin *builtin_owner;

static TPMBuiltin *TPM_BUILTIN(TPMBackend *be)
{
    g_assert(be && be->klass == &tpm_builtin_class);
    return (TPMBuiltin *)be;
}

bool tpm_builtin_is_builtin(TPMBackend *be)
{
    return be && be->klass == &tpm_builtin_class;
}

static void tpm_builtin_print_help(void)
{
    printf(
        "  version=2.0|1.2          TPM version, default 2.0\n"
        "  drive=<id>               drive (-drive if=none,id=...) that keeps the TPM "
        "state;\n"
        "                           use an encrypted qcow2 (docs/nvram.md)\n"
        "  path=<file>              qcow2 image that keeps the TPM state, created on "
        "first use\n"
        "  key-secret=<id>          with path=: secret that encrypts the image (LUKS)\n"
        "Without drive= or path= the TPM state is lost when tpmvm exits.\n");
}

static bool builtin_parse_version(const char *str, TPMVersion *out, GError **errp)
{
    if (!str || strcmp(str, "2.0") == 0 || strcmp(str, "2") == 0) {
        *out = TPM_VERSION_2_0;
    } else if (strcmp(str, "1.2") == 0) {
        *out = TPM_VERSION_1_2;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter 'version' expects 2.0 or 1.2, not '%s'", str);
        return false;
    }
    return true;
}

static bool builtin_claim(const char *id, GError **errp)
{
    if (builtin_owner) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "only one builtin TPM can exist per process (libtpms holds a single "
                    "TPM) and '%s' is already one; use one -tpmdev builtin",
                    builtin_owner->parent.id);
        return false;
    }
    return true;
}

/* Common part of create and tpm_builtin_new: store opened over the medium. */
static TPMBuiltin *builtin_setup(const char *id, TPMVersion version,
                                 const TPMNvramOps *ops, void *opaque,
                                 const char *medium_name, TPMBuiltinStorage *storage,
                                 GError **errp)
{
    uint64_t max_blob[TPM_NVRAM_NBLOBS];
    g_autoptr(GError) err = NULL;
    TPMBuiltin *tb;
    TPMNvram *nv;

    tpm_builtin_lib_blob_limits(version, max_blob);
    nv = tpm_nvram_open(ops, opaque, medium_name, version == TPM_VERSION_1_2 ? 1 : 2,
                        max_blob, &err);
    if (!nv) {
        uint64_t need = tpm_nvram_required_size(max_blob);
        int64_t have = storage ? tpm_builtin_storage_size(storage) : -1;
        if (have >= 0 && (uint64_t)have < need) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "%s; make an image of at least %" G_GUINT64_FORMAT
                        " KiB, e.g. tpmvm-img create -f qcow2 --object "
                        "secret,id=sec0,file=PASSFILE -o "
                        "encrypt.format=luks,encrypt.key-secret=sec0 FILE 1M",
                        err->message, (need + 1023) / 1024);
        } else {
            g_propagate_error(errp, g_steal_pointer(&err));
        }
        return NULL;
    }
    tb = g_new0(TPMBuiltin, 1);
    tb->version = version;
    tb->storage = storage;
    tb->nv = nv;
    tb->buffer_size = tpm_builtin_lib_buffer_size(version, 0);
    tpm_backend_init(&tb->parent, &tpm_builtin_class, id);
    builtin_owner = tb;
    return tb;
}

static TPMBackend *tpm_builtin_create(const char *id, KeyVal *opts, GError **errp)
{
    const char *version_str = keyval_get(opts, "version");
    const char *drive = keyval_get(opts, "drive");
    const char *path = keyval_get(opts, "path");
    const char *secret = keyval_get(opts, "key-secret");
    uint64_t max_blob[TPM_NVRAM_NBLOBS];
    TPMBuiltinStorage *storage = NULL;
    TPMVersion version;
    TPMBuiltin *tb;

    if (!builtin_parse_version(version_str, &version, errp) || !builtin_claim(id, errp)) {
        return NULL;
    }
    if (drive && path) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "drive= and path= cannot be used together; give one of them");
        return NULL;
    }
    if (secret && !path) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "key-secret= only applies to path=; for drive= give "
                    "encrypt.key-secret= to -drive");
        return NULL;
    }
    if (drive || path) {
        tpm_builtin_lib_blob_limits(version, max_blob);
        storage = tpm_builtin_storage_open(drive, path, secret,
                                           tpm_nvram_required_size(max_blob), id, errp);
        if (!storage) {
            return NULL;
        }
    } else {
        warn_report("-tpmdev builtin,id=%s: no drive= or path=: the TPM state is kept in "
                    "memory and lost when tpmvm exits",
                    id);
    }
    tb = builtin_setup(id, version, storage ? tpm_builtin_storage_ops(storage) : NULL,
                       storage ? tpm_builtin_storage_opaque(storage) : NULL,
                       storage ? tpm_builtin_storage_name(storage) : "memory", storage,
                       errp);
    if (!tb) {
        tpm_builtin_storage_close(storage);
        return NULL;
    }
    return &tb->parent;
}

TPMBackend *tpm_builtin_new(const char *id, TPMVersion version, const TPMNvramOps *ops,
                            void *opaque, const char *medium_name, GError **errp)
{
    TPMBuiltin *tb;

    if (!builtin_claim(id, errp)) {
        return NULL;
    }
    tb = builtin_setup(id, version, ops, opaque, medium_name ? medium_name : "memory",
                       NULL, errp);
    return tb ? &tb->parent : NULL;
}

static void tpm_builtin_destroy(TPMBackend *be)
{
    TPMBuiltin *tb = (TPMBuiltin *)be;

    if (builtin_owner == tb) {
        tpm_builtin_lib_stop();
        builtin_owner = NULL;
    }
    tpm_nvram_free(tb->nv);
    tpm_builtin_storage_close(tb->storage);
    g_free(tb);
}

static bool tpm_builtin_startup(TPMBackend *be, size_t buffersize, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);
    uint32_t want = buffersize > UINT32_MAX ? UINT32_MAX : (uint32_t)buffersize;

    if (!tpm_builtin_lib_start(tb->version, want, tb->nv, NULL, errp)) {
        return false;
    }
    tb->buffer_size = tpm_builtin_lib_get_buffer_size();
    return true;
}

static void tpm_builtin_reset(TPMBackend *be)
{
    /* Volatile state is gone; startup_tpm starts again from the store. */
    tpm_builtin_lib_stop();
}

/* Ordinals whose success means the TPM passed its self-test. */
static bool builtin_ordinal_is_selftest(TPMVersion v, uint32_t ordinal)
{
    if (v == TPM_VERSION_1_2) {
        /* TPM 1.2 Part 3: TPM_SelfTestFull 0x50, TPM_ContinueSelfTest 0x53 */
        return ordinal == 0x50 || ordinal == 0x53;
    }
    return ordinal == 0x143; /* TPM 2.0 Part 3: TPM2_SelfTest */
}

static void tpm_builtin_handle_request(TPMBackend *be, TPMBackendCmd *cmd)
{
    TPMBuiltin *tb = (TPMBuiltin *)be;
    /* in and out may be one buffer: read the ordinal before processing */
    uint32_t ordinal = cmd->in_len >= 10 ? tpm_cmd_get_ordinal(cmd->in) : 0;
    uint32_t rsp_len;

    rsp_len =
        tpm_builtin_lib_process(cmd->locty, cmd->in, cmd->in_len, cmd->out, cmd->out_len);
    if (rsp_len < 10) {
        tpm_util_write_fatal_error_response(cmd->out, cmd->out_len, tb->version);
        return;
    }
    cmd->selftest_done = tpm_cmd_get_errcode(cmd->out) == 0 &&
                         builtin_ordinal_is_selftest(tb->version, ordinal);
    __atomic_add_fetch(&tb->commands, 1, __ATOMIC_RELAXED);
}

static void tpm_builtin_cancel_cmd(TPMBackend *be)
{
    tpm_builtin_lib_cancel();
}

static bool tpm_builtin_get_established(TPMBackend *be)
{
    return tpm_builtin_lib_get_established();
}

static int tpm_builtin_reset_established(TPMBackend *be, uint8_t locty)
{
    g_autoptr(GError) err = NULL;

    if (!tpm_builtin_lib_reset_established(locty, &err)) {
        trace_event("tpm_builtin_reset_established_failed", "locty=%u: %s", locty,
                    err->message);
        return -1;
    }
    return 0;
}

static TPMVersion tpm_builtin_get_version(TPMBackend *be)
{
    return TPM_BUILTIN(be)->version;
}

static size_t tpm_builtin_get_buffer_size(TPMBackend *be)
{
    return TPM_BUILTIN(be)->buffer_size;
}

static void tpm_builtin_get_options(TPMBackend *be, GHashTable *kv)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);

    g_hash_table_insert(kv, g_strdup("version"), g_strdup(tpm_version_name(tb->version)));
    if (tb->storage) {
        tpm_builtin_storage_get_options(tb->storage, kv);
    } else if (!tpm_nvram_has_medium(tb->nv)) {
        g_hash_table_insert(kv, g_strdup("state"), g_strdup("memory"));
    }
}

/*
 * vmstate section "tpm-builtin" version 1 (payload after the generic
 * header, big-endian):
 *   u8 TPM version (1 = 1.2, 2 = 2.0), u8 flags (bit 0: TPM running),
 *   u16 zero, then for permall, volatilestate, savestate in this order:
 *   u32 length, length bytes (length 0: absent).
 */
typedef struct BuiltinVmstate {
    uint8_t version;
    uint8_t flags;
    const uint8_t *blob[TPM_NVRAM_NBLOBS];
    uint32_t len[TPM_NVRAM_NBLOBS];
} BuiltinVmstate;

static bool vmstate_bad(GError **errp, const char *what)
{
    g_set_error(
        errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
        "vmstate section 'tpm-builtin': %s; the saved state is damaged or from an "
        "incompatible tpmvm",
        what);
    return false;
}

static bool builtin_vmstate_parse(TPMBuiltin *tb, const uint8_t *buf, size_t len,
                                  BuiltinVmstate *out, GError **errp)
{
    uint64_t pos = 4;

    memset(out, 0, sizeof(*out));
    if (len < 4) {
        return vmstate_bad(errp, "section is truncated");
    }
    out->version = buf[0];
    out->flags = buf[1];
    if (buf[2] || buf[3] || (out->flags & ~BUILTIN_VMSTATE_RUNNING)) {
        return vmstate_bad(errp, "unknown flags are set");
    }
    if (out->version != (tb->version == TPM_VERSION_1_2 ? 1 : 2)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "vmstate section 'tpm-builtin': the saved TPM is a TPM %s but "
                    "-tpmdev '%s' is a TPM %s; start tpmvm with the same version=",
                    out->version == 1 ? "1.2" : "2.0", tb->parent.id,
                    tpm_version_name(tb->version));
        return false;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        uint32_t n;
        if (len - pos < 4) {
            return vmstate_bad(errp, "section is truncated");
        }
        n = (uint32_t)buf[pos] << 24 | (uint32_t)buf[pos + 1] << 16 |
            (uint32_t)buf[pos + 2] << 8 | buf[pos + 3];
        pos += 4;
        if (n > BUILTIN_VMSTATE_MAX_BLOB || n > len - pos) {
            return vmstate_bad(errp, "a state blob is longer than the section");
        }
        out->blob[b] = n ? buf + pos : NULL;
        out->len[b] = n;
        pos += n;
    }
    if (pos != len) {
        return vmstate_bad(errp, "section length does not match its contents");
    }
    if ((out->flags & BUILTIN_VMSTATE_RUNNING) &&
        (!out->len[TPM_NVRAM_BLOB_PERMALL] || !out->len[TPM_NVRAM_BLOB_VOLATILE])) {
        return vmstate_bad(errp, "a running TPM without permanent or volatile state");
    }
    return true;
}

static bool builtin_vmstate_pre_save(void *opaque, GError **errp)
{
    tpm_backend_finish_sync(opaque);
    return true;
}

static void put_blob(GByteArray *out, GBytes *blob)
{
    gsize n = blob ? g_bytes_get_size(blob) : 0;
    uint8_t hdr[4] = {n >> 24, n >> 16, n >> 8, n};

    g_byte_array_append(out, hdr, 4);
    if (n) {
        g_byte_array_append(out, g_bytes_get_data(blob, NULL), n);
    }
}

static bool builtin_vmstate_save(void *opaque, GByteArray *out, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(opaque);
    TPMBuiltinBlobs blobs = {0};
    bool running = tpm_builtin_lib_is_running();
    uint8_t hdr[4] = {tb->version == TPM_VERSION_1_2 ? 1 : 2,
                      running ? BUILTIN_VMSTATE_RUNNING : 0, 0, 0};

    tpm_backend_finish_sync(&tb->parent);
    if (running && !tpm_builtin_lib_get_state(&blobs, errp)) {
        g_prefix_error(errp, "TPM backend '%s': ", tb->parent.id);
        return false;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        if (blobs.blob[b] && g_bytes_get_size(blobs.blob[b]) > BUILTIN_VMSTATE_MAX_BLOB) {
            tpm_builtin_blobs_clear(&blobs);
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "TPM backend '%s': the %s blob is too large to save",
                        tb->parent.id, tpm_nvram_blob_name(b));
            return false;
        }
    }
    g_byte_array_append(out, hdr, sizeof(hdr));
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        put_blob(out, blobs.blob[b]);
    }
    tpm_builtin_blobs_clear(&blobs);
    return true;
}

static bool builtin_vmstate_check(void *opaque, const uint8_t *buf, size_t len,
                                  int version_id, GError **errp)
{
    BuiltinVmstate st;

    return builtin_vmstate_parse(TPM_BUILTIN(opaque), buf, len, &st, errp);
}

/*
 * Apply saved blobs: stop libtpms and start it from them (permanent, then
 * volatile, then savestate). The permanent blob also becomes the drive's, so
 * that a later power cycle starts from the state the guest saw. On failure
 * the previous TPM state is restored.
 */
static bool builtin_apply_state(TPMBuiltin *tb, const TPMBuiltinBlobs *state,
                                GError **errp)
{
    TPMBuiltinBlobs previous = {0};
    bool had_previous =
        tpm_builtin_lib_is_running() && tpm_builtin_lib_get_state(&previous, NULL);
    GBytes *perm = state->blob[TPM_NVRAM_BLOB_PERMALL];
    bool ok;

    ok = tpm_builtin_lib_start(tb->version, tb->buffer_size, tb->nv, state, errp);
    if (ok) {
        ok = tpm_nvram_store(tb->nv, TPM_NVRAM_BLOB_PERMALL, g_bytes_get_data(perm, NULL),
                             (uint32_t)g_bytes_get_size(perm), errp);
    }
    if (!ok && had_previous) {
        tpm_builtin_lib_start(tb->version, tb->buffer_size, tb->nv, &previous, NULL);
    }
    tpm_builtin_blobs_clear(&previous);
    if (ok) {
        tb->buffer_size = tpm_builtin_lib_get_buffer_size();
        tb->parent.had_startup_error = false;
        g_clear_pointer(&tb->parent.startup_error, g_free);
    }
    return ok;
}

static bool builtin_vmstate_load(void *opaque, const uint8_t *buf, size_t len,
                                 int version_id, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(opaque);
    TPMBuiltinBlobs blobs = {0};
    BuiltinVmstate st;
    bool ok;

    if (!builtin_vmstate_parse(tb, buf, len, &st, errp)) {
        return false;
    }
    tpm_backend_finish_sync(&tb->parent);
    if (!(st.flags & BUILTIN_VMSTATE_RUNNING)) {
        tpm_builtin_lib_stop();
        return true;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        if (st.len[b]) {
            blobs.blob[b] = g_bytes_new(st.blob[b], st.len[b]);
        }
    }
    ok = builtin_apply_state(tb, &blobs, errp);
    tpm_builtin_blobs_clear(&blobs);
    if (!ok) {
        g_prefix_error(errp, "the saved TPM state was refused: ");
    }
    return ok;
}

static const VMStateDescription tpm_builtin_vmstate = {
    .name = "tpm-builtin",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = builtin_vmstate_pre_save,
    .save = builtin_vmstate_save,
    .check = builtin_vmstate_check,
    .load = builtin_vmstate_load,
};

static const TPMBackendClass tpm_builtin_class = {
    .type = "builtin",
    .desc = "TPM emulated inside tpmvm by libtpms, state kept on a drive",
    .create = tpm_builtin_create,
    .destroy = tpm_builtin_destroy,
    .print_help = tpm_builtin_print_help,
    .startup_tpm = tpm_builtin_startup,
    .reset = tpm_builtin_reset,
    .handle_request = tpm_builtin_handle_request,
    .cancel_cmd = tpm_builtin_cancel_cmd,
    .get_tpm_established_flag = tpm_builtin_get_established,
    .reset_tpm_established_flag = tpm_builtin_reset_established,
    .get_tpm_version = tpm_builtin_get_version,
    .get_buffer_size = tpm_builtin_get_buffer_size,
    .get_options = tpm_builtin_get_options,
    .vmsd = &tpm_builtin_vmstate,
};
TPM_BACKEND_REGISTER(tpm_builtin_class)

bool tpm_builtin_drain(TPMBackend *be, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);

    tpm_backend_finish_sync(be);
    return tpm_nvram_flush(tb->nv, errp);
}

bool tpm_builtin_reload_drive(TPMBackend *be, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);

    tpm_backend_finish_sync(be);
    return tpm_nvram_reload(tb->nv, errp);
}

bool tpm_builtin_power_cycle_from_drive(TPMBackend *be, GError **errp)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);
    GError *err = NULL;

    if (!tpm_builtin_reload_drive(be, errp)) {
        return false;
    }
    tpm_builtin_lib_stop();
    if (!tpm_builtin_lib_start(tb->version, tb->buffer_size, tb->nv, NULL, &err)) {
        be->had_startup_error = true;
        g_free(be->startup_error);
        be->startup_error = g_strdup(err->message);
        g_propagate_prefixed_error(errp, err,
                                   "TPM backend '%s' failed to start: ", be->id);
        return false;
    }
    be->had_startup_error = false;
    g_clear_pointer(&be->startup_error, g_free);
    return true;
}

void tpm_builtin_get_stats(TPMBackend *be, TPMBuiltinStats *stats)
{
    TPMBuiltin *tb = TPM_BUILTIN(be);
    TPMNvramStats ns;

    tpm_nvram_get_stats(tb->nv, &ns);
    stats->commands = __atomic_load_n(&tb->commands, __ATOMIC_RELAXED);
    stats->writes = ns.writes;
    stats->bytes_written = ns.bytes_written;
    stats->flushes = ns.flushes;
}
