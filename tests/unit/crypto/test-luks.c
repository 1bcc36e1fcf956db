/*
 * LUKS1 header creation, unlocking, payload sectors, key slots and hostile
 * headers, on an in-memory LUKS area.
 */
#include <string.h>

#include "crypto/luks.h"
#include "luks-mem-io.h"
#include "util/error.h"

#define PASS "correct horse"

static const LuksCreateOpts fast_opts = {.iter_time_ms = 10};

static LuksBlock *create_area(MemArea *a, LuksIO *io, const LuksCreateOpts *opts)
{
    g_autoptr(GError) err = NULL;
    LuksBlock *luks;

    mem_area_init(a, io);
    luks = luks_create(opts, (const uint8_t *)PASS, strlen(PASS), io, &err);
    g_assert_no_error(err);
    g_assert_nonnull(luks);
    return luks;
}

static void test_create_then_open(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *created = create_area(&a, &io, &fast_opts);
    LuksBlock *opened;
    uint8_t plain[4096], buf[4096];

    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i * 7 + 3);
    }
    g_assert_cmpuint(a.bytes->len, <=, luks_area_size(&fast_opts));

    opened = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
    g_assert_no_error(err);
    g_assert_nonnull(opened);

    /* What one handle encrypts, the other decrypts: both hold the same master key. */
    memcpy(buf, plain, sizeof(buf));
    g_assert_true(luks_encrypt(created, 4736, buf, sizeof(buf), &err));
    g_assert_true(memcmp(buf, plain, sizeof(buf)) != 0);
    g_assert_true(luks_decrypt(opened, 4736, buf, sizeof(buf), &err));
    g_assert_cmpmem(buf, sizeof(buf), plain, sizeof(plain));

    luks_free(created);
    luks_free(opened);
    mem_area_clear(&a);
}

static void test_wrong_password_is_refused(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *created = create_area(&a, &io, &fast_opts);

    g_assert_null(luks_open((const uint8_t *)"wrong", 5, &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    g_assert_cmpstr(err->message, ==, "Invalid password, cannot unlock any keyslot");
    g_clear_error(&err);
    /* A prefix of the right passphrase is a different passphrase. */
    g_assert_null(luks_open((const uint8_t *)PASS, strlen(PASS) - 1, &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);

    luks_free(created);
    mem_area_clear(&a);
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32_at(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* LUKS1 header offsets (LUKS On-Disk Format 1.2 §2.4) for the checks below. */
enum {
    OFF_VERSION = 6,
    OFF_CIPHER_NAME = 8,
    OFF_CIPHER_MODE = 40,
    OFF_HASH_SPEC = 72,
    OFF_PAYLOAD = 104,
    OFF_KEY_BYTES = 108,
    OFF_MK_ITERS = 164,
    OFF_UUID = 168,
    OFF_SLOTS = 208,
    SLOT_LEN = 48,
    SLOT_ACTIVE = 0,
    SLOT_ITERS = 4,
    SLOT_KEY_OFFSET = 40,
    SLOT_STRIPES = 44,
};

static bool field_terminated(const uint8_t *h, int off, int len)
{
    return memchr(h + off, 0, len) != NULL;
}

/*
 * Every check QEMU's LUKS driver runs on open, written out independently of
 * crypto/luks.c, applied to a header we created.
 */
static void assert_qemu_accepts(const uint8_t *h, uint32_t key_bytes, const char *hash)
{
    uint32_t payload = be32_at(h + OFF_PAYLOAD);
    uint64_t material = ((uint64_t)key_bytes * 4000 + 511) / 512;
    uint64_t stride = (material + 7) / 8 * 8;

    g_assert_cmpmem(h, 6, "LUKS\xba\xbe", 6);
    g_assert_cmpuint(h[OFF_VERSION] << 8 | h[OFF_VERSION + 1], ==, 1);
    g_assert_true(field_terminated(h, OFF_CIPHER_NAME, 32));
    g_assert_true(field_terminated(h, OFF_CIPHER_MODE, 32));
    g_assert_true(field_terminated(h, OFF_HASH_SPEC, 32));
    g_assert_cmpstr((const char *)h + OFF_CIPHER_NAME, ==, "aes");
    g_assert_cmpstr((const char *)h + OFF_CIPHER_MODE, ==, "xts-plain64");
    g_assert_cmpstr((const char *)h + OFF_HASH_SPEC, ==, hash);
    g_assert_cmpuint(be32_at(h + OFF_KEY_BYTES), ==, key_bytes);
    g_assert_cmpuint(payload, >=, 8);
    g_assert_cmpuint(payload, ==, 8 + 8 * stride);
    g_assert_cmpuint(be32_at(h + OFF_MK_ITERS), >=, 1000);
    /* UUID v4 as text: 36 characters, NUL-terminated. */
    g_assert_cmpuint(strnlen((const char *)h + OFF_UUID, 40), ==, 36);
    g_assert_cmpint(h[OFF_UUID + 14], ==, '4');
    for (int i = 0; i < 8; i++) {
        const uint8_t *s = h + OFF_SLOTS + i * SLOT_LEN;
        uint64_t start = be32_at(s + SLOT_KEY_OFFSET);

        g_assert_cmpuint(be32_at(s + SLOT_STRIPES), ==, 4000);
        g_assert_cmphex(be32_at(s + SLOT_ACTIVE), ==, i == 0 ? 0x00AC71F3 : 0x0000DEAD);
        if (i == 0) {
            g_assert_cmpuint(be32_at(s + SLOT_ITERS), >=, 1000);
        }
        g_assert_cmpuint(start, ==, 8 + i * stride);
        g_assert_cmpuint(start, >=, 8);
        g_assert_cmpuint(start + material, <=, payload);
        for (int j = 0; j < i; j++) {
            uint64_t start_j = be32_at(h + OFF_SLOTS + j * SLOT_LEN + SLOT_KEY_OFFSET);

            g_assert_true(start >= start_j + material || start_j >= start + material);
        }
    }
}

static void test_created_header_passes_qemu_checks(void)
{
    static const struct {
        LuksCreateOpts opts;
        uint32_t key_bytes;
        const char *hash;
    } cases[] = {
        {{.iter_time_ms = 10}, 64, "sha256"},
        {{"aes-256", "xts", "plain64", "sha256", 10}, 64, "sha256"},
        {{"aes-128", "xts", "plain64", "sha1", 10}, 32, "sha1"},
        {{"aes-128", NULL, NULL, "sha256", 10}, 32, "sha256"},
    };

    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        g_autoptr(GError) err = NULL;
        MemArea a;
        LuksIO io;
        LuksBlock *luks = create_area(&a, &io, &cases[c].opts);
        LuksBlock *again;
        LuksInfo info;

        assert_qemu_accepts(a.bytes->data, cases[c].key_bytes, cases[c].hash);
        g_assert_cmpuint(luks_area_size(&cases[c].opts), ==,
                         be32_at(a.bytes->data + OFF_PAYLOAD) * 512ull);
        g_assert_true(luks_get_info(luks, NULL, &info, &err));
        g_assert_cmpstr(info.cipher_alg, ==,
                        cases[c].key_bytes == 64 ? "aes-256" : "aes-128");
        g_assert_cmpstr(info.cipher_mode, ==, "xts");
        g_assert_cmpstr(info.ivgen_alg, ==, "plain64");
        g_assert_cmpstr(info.hash_alg, ==, cases[c].hash);
        g_assert_cmpstr(info.uuid, ==, (const char *)a.bytes->data + OFF_UUID);
        g_assert_true(info.slots[0].active);
        g_assert_false(info.slots[1].active);
        g_assert_cmpuint(info.slots[1].key_offset, ==,
                         be32_at(a.bytes->data + OFF_SLOTS + SLOT_LEN + SLOT_KEY_OFFSET) *
                             512ull);

        again = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
        g_assert_no_error(err);
        luks_free(again);
        luks_free(luks);
        mem_area_clear(&a);
    }
    /* QEMU's layout for the defaults: slots every 504 sectors, payload at 4040. */
    g_assert_cmpuint(luks_area_size(NULL), ==, 4040 * 512);
}

static void test_unsupported_create_options_are_named(void)
{
    static const struct {
        LuksCreateOpts opts;
        const char *named;
    } cases[] = {
        {{.cipher_alg = "twofish-256"}, "'twofish-256'"},
        {{.cipher_alg = "aes-192"}, "'aes-192'"},
        {{.cipher_mode = "cbc"}, "'cbc'"},
        {{.ivgen_alg = "essiv"}, "'essiv'"},
        {{.hash_alg = "sha512"}, "'sha512'"},
    };

    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        g_autoptr(GError) err = NULL;
        MemArea a;
        LuksIO io;

        mem_area_init(&a, &io);
        g_assert_cmpuint(luks_area_size(&cases[c].opts), ==, 0);
        g_assert_null(luks_create(&cases[c].opts, (const uint8_t *)"x", 1, &io, &err));
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(err->message, cases[c].named));
        g_assert_cmpuint(a.writes, ==, 0);
        mem_area_clear(&a);
    }
}

static void test_sectors_round_trip_at_any_start(void)
{
    g_autoptr(GError) err = NULL;
    static const uint64_t starts[] = {0, 1, 8, 4736, 0xffffffffull, UINT64_MAX - 7};
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    uint8_t plain[8 * 512], buf[8 * 512], first[8 * 512];

    memset(plain, 0xa5, sizeof(plain));
    for (size_t s = 0; s < G_N_ELEMENTS(starts); s++) {
        memcpy(buf, plain, sizeof(buf));
        g_assert_true(luks_encrypt(luks, starts[s], buf, sizeof(buf), &err));
        /* Same plaintext in every sector, different ciphertext in each. */
        for (int i = 1; i < 8; i++) {
            g_assert_true(memcmp(buf + i * 512, buf + (i - 1) * 512, 512) != 0);
        }
        if (s == 0) {
            memcpy(first, buf, sizeof(first));
        } else {
            g_assert_true(memcmp(buf, first, 512) != 0);
        }
        g_assert_true(luks_decrypt(luks, starts[s], buf, sizeof(buf), &err));
        g_assert_cmpmem(buf, sizeof(buf), plain, sizeof(plain));
    }
    /* Decrypting with the wrong sector gives garbage, not the data. */
    memcpy(buf, plain, sizeof(buf));
    g_assert_true(luks_encrypt(luks, 100, buf, 512, &err));
    g_assert_true(luks_decrypt(luks, 101, buf, 512, &err));
    g_assert_true(memcmp(buf, plain, 512) != 0);

    g_assert_false(luks_encrypt(luks, 0, buf, 511, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_GENERIC);
    g_clear_error(&err);
    g_assert_false(luks_decrypt(luks, 0, buf, 513, &err));
    g_assert_nonnull(err);
    luks_free(luks);
    mem_area_clear(&a);
}

static LuksBlock *open_with(LuksIO *io, const char *pass, GError **errp)
{
    return luks_open((const uint8_t *)pass, strlen(pass), io, errp);
}

static void test_key_slots_add_and_erase(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    LuksBlock *b;
    LuksInfo info;
    uint8_t enc[512] = {0}, dec[512];
    int slot = -1;

    g_assert_true(luks_encrypt(luks, 3, enc, sizeof(enc), &err));
    g_assert_true(luks_add_key(luks, (const uint8_t *)"second", 6, 10, -1, &slot, &err));
    g_assert_no_error(err);
    g_assert_cmpint(slot, ==, 1);

    /* Either passphrase yields the same master key. */
    b = open_with(&io, "second", &err);
    g_assert_no_error(err);
    memcpy(dec, enc, sizeof(dec));
    g_assert_true(luks_decrypt(b, 3, dec, sizeof(dec), &err));
    for (size_t i = 0; i < sizeof(dec); i++) {
        g_assert_cmpuint(dec[i], ==, 0);
    }
    luks_free(b);
    b = open_with(&io, PASS, &err);
    g_assert_no_error(err);
    luks_free(b);

    g_assert_true(luks_erase_key(luks, 0, &err));
    g_assert_no_error(err);
    g_assert_null(open_with(&io, PASS, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    g_clear_error(&err);
    b = open_with(&io, "second", &err);
    g_assert_no_error(err);
    g_assert_true(luks_get_info(b, NULL, &info, &err));
    g_assert_false(info.slots[0].active);
    g_assert_true(info.slots[1].active);
    luks_free(b);

    g_assert_false(luks_erase_key(luks, 1, &err));
    g_assert_nonnull(strstr(err->message, "last"));
    g_clear_error(&err);
    g_assert_false(luks_erase_key(luks, 0, &err));
    g_assert_nonnull(strstr(err->message, "not in use"));
    g_clear_error(&err);
    g_assert_false(luks_erase_key(luks, 8, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);
    g_assert_false(luks_erase_key(luks, -1, &err));
    g_clear_error(&err);

    /* A chosen free slot; a busy or missing one is refused. */
    g_assert_true(luks_add_key(luks, (const uint8_t *)"k", 1, 10, 6, &slot, &err));
    g_assert_cmpint(slot, ==, 6);
    g_assert_false(luks_add_key(luks, (const uint8_t *)"k", 1, 10, 6, &slot, &err));
    g_assert_nonnull(strstr(err->message, "Refusing to overwrite active keyslot 6"));
    g_clear_error(&err);
    g_assert_false(luks_add_key(luks, (const uint8_t *)"k", 1, 10, 8, &slot, &err));
    g_clear_error(&err);
    {
        bool match[8];

        g_assert_cmpint(luks_find_key_slots(luks, (const uint8_t *)"k", 1, match, &err),
                        ==, 1);
        for (int i = 0; i < 8; i++) {
            g_assert_cmpint(match[i], ==, i == 6);
        }
        g_assert_cmpint(luks_find_key_slots(luks, (const uint8_t *)"x", 1, match, &err),
                        ==, 0);
    }
    g_assert_true(luks_erase_key(luks, 6, &err));

    /* Slot 0 is free again; fill all eight, then a ninth must fail. */
    for (int i = 0; i < 7; i++) {
        g_assert_true(luks_add_key(luks, (const uint8_t *)"k", 1, 10, -1, &slot, &err));
        g_assert_no_error(err);
    }
    g_assert_false(luks_add_key(luks, (const uint8_t *)"k", 1, 10, -1, &slot, &err));
    g_assert_nonnull(strstr(err->message, "in use"));
    luks_free(luks);
    mem_area_clear(&a);
}

/* A LuksIO whose writes fail: a test double to reach the error paths. */
static bool failing_write(void *opaque, uint64_t offset, const void *buf, size_t len,
                          GError **errp)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "disk full");
    return false;
}

static void test_write_failure_is_reported(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;

    mem_area_init(&a, &io);
    io.write = failing_write;
    g_assert_null(luks_create(&fast_opts, (const uint8_t *)"x", 1, &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_IO);
    g_assert_cmpstr(err->message, ==, "disk full");
    mem_area_clear(&a);
}

typedef struct HeaderMutation {
    const char *what;
    int offset; /* byte offset in the header */
    int width;  /* 4: big-endian u32 `value`; 0: fill `len` bytes with `value` */
    uint32_t value;
    int len;
    const char *message; /* expected substring of the error */
} HeaderMutation;

#define SLOT(i, field) (OFF_SLOTS + (i)*SLOT_LEN + (field))

static const HeaderMutation hostile[] = {
    {"magic", 0, 0, 'X', 1, "not in LUKS format"},
    {"version 2", OFF_VERSION, 0, 0x02, 2, "version"},
    {"version 0", OFF_VERSION, 0, 0x00, 2, "version"},
    {"version 0xffff", OFF_VERSION, 0, 0xff, 2, "version"},
    {"cipher name without NUL", OFF_CIPHER_NAME, 0, 'A', 32, "cipher_name"},
    {"cipher mode without NUL", OFF_CIPHER_MODE, 0, 'B', 32, "cipher_mode"},
    {"hash spec without NUL", OFF_HASH_SPEC, 0, 'C', 32, "hash_spec"},
    {"other cipher", OFF_CIPHER_NAME, 0, 'z', 3, "'zzz-xts-plain64'"},
    {"other mode", OFF_CIPHER_MODE, 0, 'q', 3, "'aes-qqq-plain64'"},
    {"other hash", OFF_HASH_SPEC, 0, 'm', 3, "'mmm256'"},
    {"key bytes 0", OFF_KEY_BYTES, 4, 0, 0, "master key length"},
    {"key bytes 16", OFF_KEY_BYTES, 4, 16, 0, "master key length"},
    {"key bytes 65", OFF_KEY_BYTES, 4, 65, 0, "master key length"},
    {"key bytes huge", OFF_KEY_BYTES, 4, 0xffffffff, 0, "master key length"},
    {"key bytes 2^31", OFF_KEY_BYTES, 4, 0x80000000, 0, "master key length"},
    /* 32 is valid by itself but then the slots no longer tile as created. */
    {"payload offset 0", OFF_PAYLOAD, 4, 0, 0, "inside the header"},
    {"payload offset 7", OFF_PAYLOAD, 4, 7, 0, "inside the header"},
    {"payload offset 8", OFF_PAYLOAD, 4, 8, 0, "overlaps the payload"},
    {"payload offset cuts slot 7", OFF_PAYLOAD, 4, 4035, 0, "slot 7"},
    {"mk iterations 0", OFF_MK_ITERS, 4, 0, 0, "0 PBKDF2 iterations"},
    {"stripes 0", SLOT(0, SLOT_STRIPES), 4, 0, 0, "stripes"},
    {"stripes 3999", SLOT(3, SLOT_STRIPES), 4, 3999, 0, "slot 3 has 3999 stripes"},
    {"stripes 4001", SLOT(7, SLOT_STRIPES), 4, 4001, 0, "stripes"},
    {"stripes huge", SLOT(0, SLOT_STRIPES), 4, 0xffffffff, 0, "stripes"},
    {"slot state 0", SLOT(2, SLOT_ACTIVE), 4, 0, 0, "invalid state"},
    {"slot state huge", SLOT(0, SLOT_ACTIVE), 4, 0xffffffff, 0, "invalid state"},
    {"active slot with 0 iterations", SLOT(0, SLOT_ITERS), 4, 0, 0, "0 PBKDF2"},
    {"key material in header", SLOT(0, SLOT_KEY_OFFSET), 4, 0, 0, "overlaps the header"},
    {"key material at 7", SLOT(5, SLOT_KEY_OFFSET), 4, 7, 0, "overlaps the header"},
    {"key material past payload", SLOT(1, SLOT_KEY_OFFSET), 4, 4000, 0, "payload"},
    {"key material offset huge", SLOT(6, SLOT_KEY_OFFSET), 4, 0xffffffff, 0, "payload"},
    {"key material overlaps slot 0", SLOT(1, SLOT_KEY_OFFSET), 4, 100, 0, "overlapping"},
    {"key material overlaps slot 2", SLOT(4, SLOT_KEY_OFFSET), 4, 1016 + 499, 0,
     "slots 2 and 4"},
};

static void apply_mutation(uint8_t *h, const HeaderMutation *m)
{
    if (m->width == 4) {
        put_be32_at(h + m->offset, m->value);
    } else {
        memset(h + m->offset, (int)m->value, m->len);
    }
}

static void test_hostile_header_fields_are_refused(void)
{
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    g_autofree uint8_t *pristine = g_memdup2(a.bytes->data, 592);

    for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
        g_autoptr(GError) err = NULL;
        LuksInfo info;

        memcpy(a.bytes->data, pristine, 592);
        apply_mutation(a.bytes->data, &hostile[i]);
        if (luks_probe(&io, &err) || !err || !strstr(err->message, hostile[i].message)) {
            g_error("%s: expected an error containing \"%s\", got \"%s\"",
                    hostile[i].what, hostile[i].message, err ? err->message : "(none)");
        }
        g_clear_error(&err);
        g_assert_false(luks_get_info(NULL, &io, &info, &err));
        g_clear_error(&err);
        /* Open validates before any PBKDF2 or key-material read. */
        g_assert_null(luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err));
        g_assert_nonnull(err);
        g_assert_false(g_error_matches(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION));
    }
    luks_free(luks);
    mem_area_clear(&a);
}

static void test_extreme_but_valid_fields_are_bounded(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    LuksBlock *opened;
    LuksInfo info;

    /* qcow2 ignores the LUKS payload offset; the largest value must not overflow. */
    put_be32_at(a.bytes->data + OFF_PAYLOAD, 0xffffffff);
    /* A UUID that fills its field without a NUL. */
    memset(a.bytes->data + OFF_UUID, 'u', 40);
    g_assert_true(luks_get_info(NULL, &io, &info, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(info.payload_offset, ==, 0xffffffffull * 512);
    g_assert_cmpuint(strlen(info.uuid), ==, 39);
    opened = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
    g_assert_no_error(err);
    luks_free(opened);

    /* An inactive slot pointing past the area is never read. */
    put_be32_at(a.bytes->data + SLOT(7, SLOT_KEY_OFFSET), 0xffffffff - 600);
    opened = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
    g_assert_no_error(err);
    luks_free(opened);

    /* An active slot whose key material lies beyond the area: an I/O error. */
    put_be32_at(a.bytes->data + SLOT(0, SLOT_KEY_OFFSET), 0xffffffff - 1200);
    g_assert_null(luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_IO);
    luks_free(luks);
    mem_area_clear(&a);
}

static void test_truncated_area_is_an_error(void)
{
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    static const guint lengths[] = {0, 100, 591, 592, 4096, 4096 + 256000 - 1};

    for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
        g_autoptr(GError) err = NULL;

        g_byte_array_set_size(a.bytes, lengths[i]);
        g_assert_null(luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err));
        g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_IO);
    }
    luks_free(luks);
    mem_area_clear(&a);
}

/*
 * Random damage anywhere in the header: never a crash. Open is only tried
 * when the damage left iteration counts small, so the test stays fast.
 */
static void test_random_header_damage_never_crashes(void)
{
    MemArea a;
    LuksIO io;
    LuksBlock *luks = create_area(&a, &io, &fast_opts);
    g_autofree uint8_t *pristine = g_memdup2(a.bytes->data, 592);
    uint32_t max_iters = 0;
    int opens = 0;

    for (int i = 0; i < 8; i++) {
        max_iters = MAX(max_iters, be32_at(pristine + SLOT(i, SLOT_ITERS)));
    }
    max_iters = MAX(max_iters, be32_at(pristine + OFF_MK_ITERS));
    for (int round = 0; round < 4000; round++) {
        g_autoptr(GError) err = NULL;
        int flips = g_test_rand_int_range(1, 4);
        bool small = true;
        LuksBlock *opened;

        memcpy(a.bytes->data, pristine, 592);
        for (int f = 0; f < flips; f++) {
            a.bytes->data[g_test_rand_int_range(0, 592)] = (uint8_t)g_test_rand_int();
        }
        if (!luks_probe(&io, &err)) {
            g_assert_nonnull(err);
            continue;
        }
        for (int i = 0; i < 8; i++) {
            small = small && be32_at(a.bytes->data + SLOT(i, SLOT_ITERS)) <= max_iters;
        }
        small = small && be32_at(a.bytes->data + OFF_MK_ITERS) <= max_iters;
        if (!small || opens >= 40) {
            continue;
        }
        opens++;
        opened = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
        g_assert_true((opened != NULL) != (err != NULL));
        luks_free(opened);
    }
    luks_free(luks);
    mem_area_clear(&a);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/luks/create/then-open-decrypts-what-create-encrypted",
                    test_create_then_open);
    g_test_add_func("/luks/open/wrong-password-is-refused",
                    test_wrong_password_is_refused);
    g_test_add_func("/luks/create/header-passes-every-qemu-open-check",
                    test_created_header_passes_qemu_checks);
    g_test_add_func("/luks/create/unsupported-options-are-named",
                    test_unsupported_create_options_are_named);
    g_test_add_func("/luks/create/write-failure-is-reported",
                    test_write_failure_is_reported);
    g_test_add_func("/luks/sectors/round-trip-at-any-start-and-differ-per-sector",
                    test_sectors_round_trip_at_any_start);
    g_test_add_func("/luks/slots/add-and-erase-keys", test_key_slots_add_and_erase);
    g_test_add_func("/luks/hostile/each-bad-field-is-refused-by-name",
                    test_hostile_header_fields_are_refused);
    g_test_add_func("/luks/hostile/extreme-valid-fields-stay-in-bounds",
                    test_extreme_but_valid_fields_are_bounded);
    g_test_add_func("/luks/hostile/truncated-area-is-an-io-error",
                    test_truncated_area_is_an_error);
    g_test_add_func("/luks/hostile/random-header-damage-never-crashes",
                    test_random_header_damage_never_crashes);
    return g_test_run();
}
