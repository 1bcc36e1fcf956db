/*
 * The TIS register logic in-process: the shared scenarios
 * (tests/qtest/tpm/tpm-tis-scenarios.c) against tpm_tis_mmio_read/write with
 * the test backend, completions delivered by iterating the GLib main context,
 * plus checks that need the device's insides (vmstate validation, startup
 * failure, buffer-size negotiation, odd accesses).
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "hw/tpm/tpm_test_backend.h"
#include "hw/tpm/tpm_tis.h"
#include "tpm-tis-scenarios.h"

typedef struct UnitHarness {
    TisHarness h;
    TPMBackend *be;
    TPMTISState *s;
    IRQLine *irq;
    int level;
    char *dir;
    char *script;
    GByteArray *saved;
} UnitHarness;

static void irq_handler(void *opaque, int n, int level)
{
    UnitHarness *u = opaque;

    u->level = level;
}

static uint64_t unit_read(TisHarness *h, uint64_t addr, unsigned size)
{
    UnitHarness *u = (UnitHarness *)h;

    /* Completions arrive between accesses, as they would in a running VM. */
    g_main_context_iteration(NULL, FALSE);
    return tpm_tis_mmio_read(u->s, addr, size);
}

static void unit_write(TisHarness *h, uint64_t addr, uint64_t val, unsigned size)
{
    UnitHarness *u = (UnitHarness *)h;

    g_main_context_iteration(NULL, FALSE);
    tpm_tis_mmio_write(u->s, addr, val, size);
}

static bool unit_irq(TisHarness *h)
{
    return ((UnitHarness *)h)->level;
}

static void unit_idle(TisHarness *h)
{
    g_usleep(200);
    g_main_context_iteration(NULL, FALSE);
}

static GBytes *unit_last_command(TisHarness *h)
{
    UnitHarness *u = (UnitHarness *)h;
    g_autoptr(GPtrArray) cmds = tpm_test_backend_get_commands(u->be);

    return cmds->len ? g_bytes_ref(cmds->pdata[cmds->len - 1]) : NULL;
}

static void unit_reset(TisHarness *h)
{
    UnitHarness *u = (UnitHarness *)h;

    g_assert_true(tpm_tis_reset(u->s, NULL));
}

static bool unit_save(TisHarness *h)
{
    UnitHarness *u = (UnitHarness *)h;
    g_autoptr(GError) err = NULL;

    g_byte_array_set_size(u->saved, 0);
    g_assert_true(tpm_tis_vmstate.pre_save(u->s, &err));
    g_assert_true(tpm_tis_vmstate.save(u->s, u->saved, &err));
    g_assert_no_error(err);
    return true;
}

static bool unit_load(TisHarness *h)
{
    UnitHarness *u = (UnitHarness *)h;
    g_autoptr(GError) err = NULL;
    const VMStateDescription *d = &tpm_tis_vmstate;

    g_assert_true(d->check(u->s, u->saved->data, u->saved->len, d->version_id, &err));
    g_assert_true(d->load(u->s, u->saved->data, u->saved->len, d->version_id, &err));
    g_assert_true(d->post_load(u->s, d->version_id, &err));
    g_assert_no_error(err);
    return true;
}

TisHarness *tis_harness_new(const char *backend_opts, const char *script)
{
    UnitHarness *u = g_new0(UnitHarness, 1);
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = NULL;

    u->dir = g_dir_make_tmp("test-tis-XXXXXX", &err);
    g_assert_no_error(err);
    u->script = g_build_filename(u->dir, "script", NULL);
    g_assert_true(g_file_set_contents(u->script, script ? script : "", -1, NULL));
    opts = g_strdup_printf("test,id=tpm0,script=%s%s%s", u->script,
                           backend_opts ? "," : "", backend_opts ? backend_opts : "");
    u->be = tpm_backend_create_from_string(opts, NULL, &err);
    g_assert_no_error(err);
    u->irq = irq_lines_new(irq_handler, u, 1);
    u->s = g_new0(TPMTISState, 1);
    tpm_tis_init(u->s, u->be, u->irq, 5);
    g_assert_true(tpm_tis_reset(u->s, &err));
    g_assert_no_error(err);
    u->saved = g_byte_array_new();
    u->h = (TisHarness){
        .read = unit_read,
        .write = unit_write,
        .irq = unit_irq,
        .idle = unit_idle,
        .last_command = unit_last_command,
        .reset = unit_reset,
        .save = unit_save,
        .load = unit_load,
        .irq_num = 5,
    };
    return &u->h;
}

void tis_harness_free(TisHarness *h)
{
    UnitHarness *u = (UnitHarness *)h;

    tpm_backend_destroy(u->be);
    irq_lines_free(u->irq);
    g_free(u->s);
    g_byte_array_unref(u->saved);
    g_unlink(u->script);
    g_rmdir(u->dir);
    g_free(u->script);
    g_free(u->dir);
    g_free(u);
}

static void test_startup_error_reads_zero(void)
{
    g_autoptr(GError) err = NULL;
    TPMBackend *be =
        tpm_backend_create_from_string("test,id=tpm0,fail-startup=on", NULL, &err);
    TPMTISState *s = g_new0(TPMTISState, 1);

    tpm_tis_init(s, be, NULL, 5);
    g_assert_false(tpm_tis_reset(s, &err));
    g_assert_nonnull(strstr(err->message, "failed to start"));
    /* Every read returns 0 and writes are ignored. */
    g_assert_cmphex(tpm_tis_mmio_read(s, 0x0, 1), ==, 0);
    g_assert_cmphex(tpm_tis_mmio_read(s, 0xf00, 4), ==, 0);
    tpm_tis_mmio_write(s, 0x0, 0x02, 1);
    g_assert_cmphex(s->active_locty, ==, TPM_TIS_NO_LOCALITY);
    tpm_backend_destroy(be);
    g_free(s);
}

static void test_buffer_size_negotiation(void)
{
    g_autoptr(GError) err = NULL;
    TPMBackend *be =
        tpm_backend_create_from_string("test,id=tpm0,buffer-size=65536", NULL, &err);
    TPMTISState *s = g_new0(TPMTISState, 1);

    tpm_tis_init(s, be, NULL, 5);
    g_assert_true(tpm_tis_reset(s, &err));
    /* The backend may offer more; the TIS buffer holds 4096 bytes. */
    g_assert_cmpuint(s->be_buffer_size, ==, TPM_TIS_BUFFER_MAX);
    g_assert_cmpuint(tpm_test_backend_startup_buffer_size(be), ==, TPM_TIS_BUFFER_MAX);
    g_assert_cmpuint(tpm_test_backend_startup_count(be), ==, 1);
    g_assert_true(tpm_tis_reset(s, &err));
    g_assert_cmpuint(tpm_test_backend_startup_count(be), ==, 2);
    tpm_backend_destroy(be);
    g_free(s);
}

static void test_odd_accesses_are_harmless(void)
{
    TisHarness *h = tis_harness_new(NULL, NULL);
    UnitHarness *u = (UnitHarness *)h;

    /* Sizes and offsets the bus would never pass still cannot hurt. */
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x18, 0), ==, ~0ULL);
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x18, 8), ==, ~0ULL);
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x5018, 4), ==, 0xffffffff);
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x7fff, 1), ==, 0xff);
    tpm_tis_mmio_write(u->s, 0x5000, 0x02, 1);
    tpm_tis_mmio_write(u->s, 0x0, 0x02, 0);
    tpm_tis_mmio_write(u->s, 0x0, 0x02, 8);
    g_assert_cmphex(u->s->active_locty, ==, TPM_TIS_NO_LOCALITY);
    /* Unaligned words: clipped to the register, no crash. */
    tpm_tis_mmio_write(u->s, 0x0, 0x02, 1);
    tpm_tis_mmio_write(u->s, 0x18, 0x40, 1);
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x1b, 2), ==, 0x0004);
    tpm_tis_mmio_write(u->s, 0x27, 0x80018001, 4);
    g_assert_cmpuint(u->s->rw_offset, ==, 1);
    g_assert_cmphex(tpm_tis_mmio_read(u->s, 0x27, 4), ==, 0xffffffff);
    tis_harness_free(h);
}

static void test_vmstate_rejects_damage(void)
{
    TisHarness *h = tis_harness_new(NULL, NULL);
    UnitHarness *u = (UnitHarness *)h;
    const VMStateDescription *d = &tpm_tis_vmstate;
    g_autoptr(GByteArray) good = g_byte_array_new();
    size_t loc0 = 12 + 4096;
    static const struct {
        size_t offset;
        uint8_t value;
        const char *msg;
    } damage[] = {
        {0, 7, "locality number out of range"},
        {1, 2, "an abort was pending"},
        {4, 0x10, "FIFO offset beyond the buffer"},
        {9, 0x10, "section length does not match"},
        {12 + 4096, 9, "locality state invalid"},
        {12 + 4096, TPM_TIS_STATE_EXECUTION, "still executing"},
        {12 + 4096 + 1, 0x80, "active locality does not match"},
        {12 + 4096 + 20 + 1, 0xa0, "active locality does not match"},
    };

    tpm_tis_mmio_write(u->s, 0x0, 0x02, 1);
    tpm_tis_mmio_write(u->s, 0x18, 0x40, 1);
    tpm_tis_mmio_write(u->s, 0x24, 0x80, 1);
    g_assert_true(d->pre_save(u->s, NULL));
    g_assert_true(d->save(u->s, good, NULL));
    g_assert_cmpuint(good->len, ==, 12 + 4096 + 5 * 20);
    g_assert_cmphex(good->data[loc0 + 1] & TPM_TIS_ACCESS_ACTIVE_LOCALITY, !=, 0);

    for (size_t i = 0; i < G_N_ELEMENTS(damage); i++) {
        g_autoptr(GByteArray) bad = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        uint8_t before[32];

        g_byte_array_append(bad, good->data, good->len);
        bad->data[damage[i].offset] = damage[i].value;
        memcpy(before, u->s->loc, MIN(sizeof(before), sizeof(u->s->loc)));
        g_assert_false(d->check(u->s, bad->data, bad->len, 1, &err));
        if (!strstr(err->message, damage[i].msg)) {
            g_error("damage %zu: '%s' not in '%s'", i, damage[i].msg, err->message);
        }
        g_clear_error(&err);
        g_assert_false(d->load(u->s, bad->data, bad->len, 1, &err));
        g_assert_cmpmem(before, sizeof(before), u->s->loc, sizeof(before));
    }
    /* Truncated or padded sections are refused too. */
    for (size_t len = 0; len < good->len + 2; len += len < 40 ? 1 : 997) {
        g_autoptr(GError) err = NULL;
        if (len == good->len) {
            continue;
        }
        g_assert_false(d->check(u->s, good->data, len, 1, &err));
    }
    g_assert_true(d->check(u->s, good->data, good->len, 1, NULL));
    tis_harness_free(h);

    /* A section saved with another buffer size names both sizes. */
    h = tis_harness_new("buffer-size=64", NULL);
    u = (UnitHarness *)h;
    {
        g_autoptr(GError) err = NULL;
        g_assert_false(d->check(u->s, good->data, good->len, 1, &err));
        g_assert_nonnull(strstr(err->message, "saved TPM buffer size 4096 differs from "
                                              "this TPM's 64"));
    }
    tis_harness_free(h);
}

/* The hot MMIO paths stay cheap: an STS read and a FIFO byte write. */
static void test_mmio_path_is_cheap(void)
{
    TisHarness *h = tis_harness_new(NULL, NULL);
    UnitHarness *u = (UnitHarness *)h;
    const int n = 200000;
    volatile uint64_t sink = 0;
    gint64 t0, t1, t2;

    tpm_tis_mmio_write(u->s, 0x0, 0x02, 1);
    tpm_tis_mmio_write(u->s, 0x18, 0x40, 1);
    /* A header announcing a 4096-byte command keeps the FIFO in reception. */
    tpm_tis_mmio_write(u->s, 0x24, 0x80010000, 4);
    tpm_tis_mmio_write(u->s, 0x24, 0x1000, 2);
    t0 = g_get_monotonic_time();
    for (int i = 0; i < n; i++) {
        sink += tpm_tis_mmio_read(u->s, 0x18, 4);
    }
    t1 = g_get_monotonic_time();
    for (int i = 0; i < n; i++) {
        tpm_tis_mmio_write(u->s, 0x24, i, 1);
        if (u->s->rw_offset >= 4000) {
            u->s->rw_offset = 6;
        }
    }
    t2 = g_get_monotonic_time();
    g_test_message("STS read %.1f ns, FIFO byte write %.1f ns", (t1 - t0) * 1000.0 / n,
                   (t2 - t1) * 1000.0 / n);
    /* Generous bounds (sanitizer builds, shared CI cores): 2 us per access. */
    g_assert_cmpint(t1 - t0, <, 2 * n / 1000 * 1000);
    g_assert_cmpint(t2 - t1, <, 2 * n / 1000 * 1000);
    g_assert_cmpuint(sink, !=, 0);
    tis_harness_free(h);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    tis_scenarios_add();
    g_test_add_func("/tpm-tis/unit/startup-error-reads-zero",
                    test_startup_error_reads_zero);
    g_test_add_func("/tpm-tis/unit/buffer-size-capped-at-4096",
                    test_buffer_size_negotiation);
    g_test_add_func("/tpm-tis/unit/odd-accesses-are-harmless",
                    test_odd_accesses_are_harmless);
    g_test_add_func("/tpm-tis/unit/vmstate-rejects-damage", test_vmstate_rejects_damage);
    g_test_add_func("/tpm-tis/unit/mmio-path-is-cheap", test_mmio_path_is_cheap);
    return g_test_run();
}
