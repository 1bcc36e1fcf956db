/*
 * LUKS-encrypted qcow2: data round trips through the host-offset IV,
 * unaligned requests (read-modify-write of 512-byte sectors), the vmstate
 * area, key slots, and failures (wrong passphrase, missing secret) that must
 * leave the image untouched.
 */
#include <string.h>

#include "block-test.h"
#include "crypto/secret.h"

static void test_write_read(void)
{
    g_autofree char *path = bt_path("luks.qcow2");
    g_autofree char *data = NULL;
    gsize len;
    BlockDriverState *bs;

    bt_create_luks(path, 16 << 20, "sec0", NULL);
    bs = bt_open_luks(path, "sec0", true);
    g_assert_true(bdrv_is_encrypted(bs));
    bt_write_pattern(bs, 0, 65536, 1);
    bt_write_pattern(bs, (1 << 20) + 3, 1000, 2); /* unaligned both ends */
    bt_write_pattern(bs, (2 << 20) + 511, 2, 3);  /* straddles two sectors */
    bt_write_pattern(bs, (3 << 20) + 100, 50, 4); /* inside one sector */
    bdrv_close(bs);

    bs = bt_open_luks(path, "sec0", false);
    bt_check_pattern(bs, 0, 65536, 1);
    bt_check_pattern(bs, 1 << 20, 3, 0);
    bt_check_pattern(bs, (1 << 20) + 3, 1000, 2);
    bt_check_pattern(bs, (1 << 20) + 1003, 5000, 0);
    bt_check_pattern(bs, (2 << 20) + 500, 11, 0);
    bt_check_pattern(bs, (2 << 20) + 511, 2, 3);
    bt_check_pattern(bs, (3 << 20) + 100, 50, 4);
    bt_assert_clean(bs);
    bdrv_close(bs);

    /* The file never holds the plaintext. */
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    {
        uint8_t probe[64];
        bt_fill(probe, 0, sizeof(probe), 1);
        g_assert_null(memmem(data, len, probe, sizeof(probe)));
    }
}

static void test_model_unaligned(void)
{
    g_autofree char *path = bt_path("model.qcow2");
    const uint64_t size = 4 << 20;
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(100000);
    g_autoptr(GError) err = NULL;
    GRand *rng = g_rand_new_with_seed(42);
    BlockDriverState *bs;

    bt_create_luks(path, size, "sec0", "cluster_size=4096");
    bs = bt_open_luks(path, "sec0", true);
    for (int i = 0; i < 200; i++) {
        uint64_t len = g_rand_int_range(rng, 1, 100000);
        uint64_t off = g_rand_int_range(rng, 0, size - len);
        bt_fill(buf, off, len, i + 1);
        memcpy(model + off, buf, len);
        g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
        g_assert_no_error(err);
    }
    for (uint64_t off = 0; off < size; off += 65536) {
        g_assert_true(bdrv_pread(bs, off, buf, 65536, &err));
        g_assert_true(memcmp(buf, model + off, 65536) == 0);
    }
    bt_assert_clean(bs);
    bdrv_close(bs);
    g_rand_free(rng);
}

static void test_large_unaligned(void)
{
    g_autofree char *path = bt_path("large.qcow2");
    BlockDriverState *bs;

    /* longer than one bounded run (8 MiB) and unaligned at both ends */
    bt_create_luks(path, 32 << 20, "sec0", "cluster_size=2M");
    bs = bt_open_luks(path, "sec0", true);
    bt_write_pattern(bs, 1001, 20 << 20, 11);
    bt_write_pattern(bs, 5 << 20, 9 << 20, 12); /* in place, across runs */
    bdrv_close(bs);
    bs = bt_open_luks(path, "sec0", false);
    bt_check_pattern(bs, 0, 1001, 0);
    bt_check_pattern(bs, 1001, (5 << 20) - 1001, 11);
    bt_check_pattern(bs, 5 << 20, 9 << 20, 12);
    bt_check_pattern(bs, 14 << 20, (20 << 20) + 1001 - (14 << 20), 11);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_wrong_passphrase(void)
{
    g_autofree char *path = bt_path("wrong.qcow2");
    g_autofree char *before = NULL, *after = NULL;
    g_autofree char *opts = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create_luks(path, 1 << 20, "sec0", NULL);
    before = bt_file_hash(path);
    opts = g_strdup_printf("driver=qcow2,file.filename=%s,encrypt.key-secret=bad", path);
    bs = bt_open_opts(opts, BDRV_O_RDWR, &err);
    g_assert_null(bs);
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    g_assert_nonnull(strstr(err->message, "Invalid password, cannot unlock any keyslot"));
    g_assert_nonnull(strstr(err->message, path));
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

static void test_missing_secret(void)
{
    g_autofree char *path = bt_path("nosecret.qcow2");
    g_autofree char *before = NULL, *after = NULL;
    g_autofree char *opts = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    BlockDriverInfo bdi;

    bt_create_luks(path, 1 << 20, "sec0", NULL);
    before = bt_file_hash(path);
    opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    bs = bt_open_opts(opts, BDRV_O_RDWR, &err);
    g_assert_null(bs);
    g_assert_nonnull(strstr(err->message, "Parameter 'encrypt.key-secret' is required"));
    g_clear_error(&err);
    g_free(opts);
    opts = g_strdup_printf("driver=qcow2,file.filename=%s,encrypt.key-secret=nope", path);
    bs = bt_open_opts(opts, 0, &err);
    g_assert_null(bs);
    g_assert_nonnull(strstr(err->message, "nope"));
    g_clear_error(&err);

    /* Metadata (info) needs no secret, but data does. */
    g_free(opts);
    opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    bs = bt_open_opts(opts, BDRV_O_NO_IO, &err);
    g_assert_no_error(err);
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_true(bdi.encrypted);
    g_assert_cmpstr(bdi.encrypt_format, ==, "luks");
    g_assert_true(bdi.luks.slots[0].active);
    {
        uint8_t b[512];
        g_assert_true(bdrv_pread(bs, 0, b, 512, &err)); /* unallocated: zeros */
        bdrv_close(bs);
    }
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

static void test_vmstate_unaligned(void)
{
    g_autofree char *path = bt_path("vm.qcow2");
    g_autofree uint8_t *state = g_malloc(200001), *back = g_malloc(200001);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {0};
    BlockDriverState *bs;

    bt_create_luks(path, 1 << 20, "sec0", "cluster_size=4096");
    bs = bt_open_luks(path, "sec0", true);
    bt_write_pattern(bs, 0, 8192, 5);
    bt_fill(state, 0, 200001, 6);
    /* Chunks of odd sizes at odd positions, as a vmstate stream writes them. */
    for (uint64_t pos = 0; pos < 200001;) {
        uint64_t n = MIN(200001 - pos, 777 + pos % 1000);
        g_assert_true(bdrv_save_vmstate(bs, state + pos, pos, n, &err));
        g_assert_no_error(err);
        pos += n;
    }
    sn.name = g_strdup("vm1");
    sn.vm_state_size = 200001;
    sn.icount = -1;
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    /* The active vmstate was discarded; the snapshot keeps its copy. */
    g_assert_true(bdrv_load_vmstate(bs, back, 0, 4096, &err));
    for (int i = 0; i < 4096; i++) {
        g_assert_cmpint(back[i], ==, 0);
    }
    bt_write_pattern(bs, 0, 8192, 7);
    g_assert_true(bdrv_snapshot_goto(bs, "vm1", &err));
    g_assert_no_error(err);
    memset(back, 0, 200001);
    g_assert_true(bdrv_load_vmstate(bs, back + 3, 3, 199998, &err));
    g_assert_true(bdrv_load_vmstate(bs, back, 0, 3, &err));
    g_assert_true(memcmp(state, back, 200001) == 0);
    bt_check_pattern(bs, 0, 8192, 5);
    bt_assert_clean(bs);
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
}

static void test_snapshot_cow_reencrypts(void)
{
    g_autofree char *path = bt_path("cow.qcow2");
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("s1"), .icount = -1};
    BlockDriverState *bs;

    bt_create_luks(path, 4 << 20, "sec0", NULL);
    bs = bt_open_luks(path, "sec0", true);
    bt_write_pattern(bs, 0, 3 << 20, 1);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    /* Partial overwrites force copy-on-write of encrypted clusters. */
    bt_write_pattern(bs, 1000, 10, 2);
    bt_write_pattern(bs, (1 << 20) + 65000, 1000, 3);
    bt_check_pattern(bs, 0, 1000, 1);
    bt_check_pattern(bs, 1000, 10, 2);
    bt_check_pattern(bs, 1010, (1 << 20) + 65000 - 1010, 1);
    bt_check_pattern(bs, (1 << 20) + 66000, 100000, 1);
    bt_assert_clean(bs);
    g_assert_true(bdrv_snapshot_goto(bs, "s1", &err));
    bt_check_pattern(bs, 0, 3 << 20, 1);
    bdrv_close(bs);
    bs = bt_open_luks(path, "sec0", false);
    bt_check_pattern(bs, 0, 3 << 20, 1);
    bt_assert_clean(bs);
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
}

/* Amend with bs open under `secret`: true if it worked, else *err_out set. */
static bool amend(BlockDriverState *bs, const char *opts, GError **err_out)
{
    g_autoptr(GError) perr = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(opts, NULL, &perr);

    g_assert_no_error(perr);
    return bdrv_amend(bs, kv, err_out);
}

static void assert_amend_fails(BlockDriverState *bs, const char *opts, const char *expect)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(amend(bs, opts, &err));
    if (!strstr(err->message, expect)) {
        g_error("amend %s: '%s', expected '%s'", opts, err->message, expect);
    }
}

/*
 * The image has "second passphrase" (secret newpw) in slot 1 only. A chosen
 * free slot takes a passphrase; erasing by passphrase removes every slot it
 * opens, but never all active slots; slot and passphrase must agree.
 */
static void amend_by_slot_and_passphrase(const char *path)
{
    g_autoptr(GError) err = NULL;
    BlockDriverInfo bdi;
    BlockDriverState *bs;

    bt_secret("third", "third passphrase");
    bt_secret("wrong", "no such passphrase");
    bs = bt_open_luks(path, "newpw", true);
    g_assert_true(amend(bs,
                        "encrypt.state=active,encrypt.new-secret=third,encrypt.keyslot=5,"
                        "encrypt.iter-time=10",
                        &err));
    g_assert_no_error(err);
    g_assert_true(amend(bs,
                        "encrypt.state=active,encrypt.new-secret=third,encrypt.keyslot=6,"
                        "encrypt.iter-time=10,encrypt.old-secret=newpw",
                        &err));
    g_assert_no_error(err);
    assert_amend_fails(bs,
                       "encrypt.state=active,encrypt.new-secret=third,encrypt.keyslot=5",
                       "Refusing to overwrite active keyslot 5");
    assert_amend_fails(bs,
                       "encrypt.state=active,encrypt.new-secret=third,encrypt.keyslot=8",
                       "Invalid keyslot 8");
    assert_amend_fails(bs, "encrypt.state=inactive,encrypt.old-secret=wrong",
                       "Invalid password");
    assert_amend_fails(
        bs, "encrypt.state=inactive,encrypt.keyslot=1,encrypt.old-secret=third",
        "Keyslot 1 is not opened by encrypt.old-secret");
    assert_amend_fails(bs, "encrypt.state=inactive",
                       "encrypt.keyslot or encrypt.old-secret");
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_true(bdi.luks.slots[1].active && bdi.luks.slots[5].active &&
                  bdi.luks.slots[6].active);

    /* Both slots of "third" go; then "second" alone may not. */
    g_assert_true(amend(bs, "encrypt.state=inactive,encrypt.old-secret=third", &err));
    g_assert_no_error(err);
    assert_amend_fails(bs, "encrypt.state=inactive,encrypt.old-secret=newpw",
                       "erase all the data in the image irreversibly");
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    for (int i = 0; i < 8; i++) {
        g_assert_cmpint(bdi.luks.slots[i].active, ==, i == 1);
    }
    bdrv_close(bs);
    bs = bt_open_luks(path, "newpw", false);
    bt_check_pattern(bs, 0, 4096, 9);
    bdrv_close(bs);
}

static void test_amend_key_slots(void)
{
    g_autofree char *path = bt_path("amend.qcow2");
    g_autofree char *opts = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = NULL;
    BlockDriverInfo bdi;
    BlockDriverState *bs;

    bt_secret("newpw", "second passphrase");
    bt_create_luks(path, 1 << 20, "sec0", NULL);
    bs = bt_open_luks(path, "sec0", true);
    bt_write_pattern(bs, 0, 4096, 9);
    kv = keyval_parse(
        "encrypt.state=active,encrypt.new-secret=newpw,encrypt.iter-time=10", NULL, &err);
    g_assert_true(bdrv_amend(bs, kv, &err));
    g_assert_no_error(err);
    keyval_free(kv);
    /* Erasing the slot we would still need is fine now that two exist. */
    kv = keyval_parse("encrypt.state=inactive,encrypt.keyslot=0", NULL, &err);
    g_assert_true(bdrv_amend(bs, kv, &err));
    g_assert_no_error(err);
    keyval_free(kv);
    /* The last active slot is never erased. */
    kv = keyval_parse("encrypt.state=inactive,encrypt.keyslot=1", NULL, &err);
    g_assert_false(bdrv_amend(bs, kv, &err));
    g_assert_nonnull(strstr(err->message, "only active keyslot"));
    g_clear_error(&err);
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_false(bdi.luks.slots[0].active);
    g_assert_true(bdi.luks.slots[1].active);
    bdrv_close(bs);
    amend_by_slot_and_passphrase(path);

    opts = g_strdup_printf("driver=qcow2,file.filename=%s,encrypt.key-secret=sec0", path);
    g_assert_null(bt_open_opts(opts, 0, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    bs = bt_open_luks(path, "newpw", false);
    bt_check_pattern(bs, 0, 4096, 9);
    bdrv_close(bs);
}

static void test_compression_refused(void)
{
    g_autofree char *path = bt_path("nocomp.qcow2");
    g_autofree uint8_t *buf = g_malloc0(65536);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create_luks(path, 1 << 20, "sec0", NULL);
    bs = bt_open_luks(path, "sec0", true);
    g_assert_false(bdrv_write_compressed(bs, 0, buf, 65536, &err));
    g_assert_nonnull(strstr(err->message, "Compression and encryption"));
    bdrv_close(bs);
}

static void test_aes_create_refused(void)
{
    g_autofree char *path = bt_path("aes.qcow2");
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv =
        keyval_parse("encrypt.format=aes,encrypt.key-secret=sec0", NULL, &err);

    g_assert_false(bdrv_create("qcow2", path, 1 << 20, kv, &err));
    g_assert_nonnull(strstr(err->message, "insecure"));
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bt_secret("sec0", "correct horse");
    bt_secret("bad", "battery staple");
    g_test_add_func("/qcow2/luks/write-read-round-trips", test_write_read);
    g_test_add_func("/qcow2/luks/unaligned-writes-match-model", test_model_unaligned);
    g_test_add_func("/qcow2/luks/large-unaligned-requests", test_large_unaligned);
    g_test_add_func("/qcow2/luks/wrong-passphrase-fails-unchanged",
                    test_wrong_passphrase);
    g_test_add_func("/qcow2/luks/missing-secret-fails-unchanged", test_missing_secret);
    g_test_add_func("/qcow2/luks/vmstate-unaligned-round-trips", test_vmstate_unaligned);
    g_test_add_func("/qcow2/luks/snapshot-cow-reencrypts", test_snapshot_cow_reencrypts);
    g_test_add_func("/qcow2/luks/amend-adds-and-erases-key-slots", test_amend_key_slots);
    g_test_add_func("/qcow2/luks/compression-refused", test_compression_refused);
    g_test_add_func("/qcow2/luks/aes-create-refused", test_aes_create_refused);
    ret = g_test_run();
    secret_delete_all();
    bt_cleanup();
    return ret;
}
