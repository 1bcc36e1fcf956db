/*
 * vmstate: round trips of every field kind, versioned fields, and streams
 * that must be refused (unknown, truncated, duplicate, newer, corrupt) with
 * the state left exactly as it was.
 */
#include <string.h>

#include "hw/core/vmstate.h"
#include "util/error.h"

typedef struct Inner {
    uint16_t a;
    uint8_t b[3];
} Inner;

typedef struct Outer {
    bool on;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32[4];
    uint64_t u64;
    uint8_t buf[5];
    Inner inner[2];
    uint32_t added_in_v2;
    /* extra payload (save/check/load hooks) */
    GByteArray *blob;
    int post_loads;
    bool reject_blob; /* check hook refuses blobs starting with 0xEE */
} Outer;

static const VMStateField inner_fields[] = {
    {.name = "a", .type = VMS_U16, .offset = offsetof(Inner, a)},
    {.name = "b", .type = VMS_U8, .offset = offsetof(Inner, b), .num = 3},
    {.name = NULL, .type = VMS_END},
};

static const VMStateDescription inner_vmsd = {
    .name = "inner",
    .version_id = 1,
    .fields = inner_fields,
};

static const VMStateField outer_fields[] = {
    {.name = "on", .type = VMS_BOOL, .offset = offsetof(Outer, on)},
    {.name = "u8", .type = VMS_U8, .offset = offsetof(Outer, u8)},
    {.name = "u16", .type = VMS_U16, .offset = offsetof(Outer, u16)},
    {.name = "u32", .type = VMS_U32, .offset = offsetof(Outer, u32), .num = 4},
    {.name = "u64", .type = VMS_U64, .offset = offsetof(Outer, u64)},
    {.name = "buf", .type = VMS_BUFFER, .offset = offsetof(Outer, buf), .size = 5},
    {.name = "inner",
     .type = VMS_STRUCT,
     .offset = offsetof(Outer, inner),
     .size = sizeof(Inner),
     .num = 2,
     .vmsd = &inner_vmsd},
    {.name = "added_in_v2",
     .type = VMS_U32,
     .offset = offsetof(Outer, added_in_v2),
     .version_id = 2},
    {.name = NULL, .type = VMS_END},
};

static bool outer_save(void *opaque, GByteArray *out, GError **errp)
{
    Outer *o = opaque;

    g_byte_array_append(out, o->blob->data, o->blob->len);
    return true;
}

static bool outer_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                        GError **errp)
{
    Outer *o = opaque;

    if (o->reject_blob && len && buf[0] == 0xee) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "blob is corrupt");
        return false;
    }
    return true;
}

static bool outer_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                       GError **errp)
{
    Outer *o = opaque;

    g_byte_array_set_size(o->blob, 0);
    g_byte_array_append(o->blob, buf, (guint)len);
    return true;
}

static bool outer_post_load(void *opaque, int version_id, GError **errp)
{
    ((Outer *)opaque)->post_loads++;
    return true;
}

static const VMStateDescription outer_v2 = {
    .name = "outer",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = outer_fields,
    .save = outer_save,
    .check = outer_check,
    .load = outer_load,
    .post_load = outer_post_load,
};

/* the same section as an older build (version 1) saw it */
static const VMStateDescription outer_v1 = {
    .name = "outer",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = outer_fields,
    .save = outer_save,
    .check = outer_check,
    .load = outer_load,
    .post_load = outer_post_load,
};

/* a fixed-layout section without hooks */
typedef struct Simple {
    uint32_t x;
} Simple;

static const VMStateField simple_fields[] = {
    {.name = "x", .type = VMS_U32, .offset = offsetof(Simple, x)},
    {.name = NULL, .type = VMS_END},
};

static const VMStateDescription simple_vmsd = {
    .name = "simple",
    .version_id = 3,
    .minimum_version_id = 2,
    .fields = simple_fields,
};

static void outer_fill(Outer *o, uint8_t seed)
{
    o->on = seed & 1;
    o->u8 = seed;
    o->u16 = (uint16_t)(0x1234 + seed);
    for (int i = 0; i < 4; i++) {
        o->u32[i] = 0x89abcdefu + (uint32_t)i + seed;
    }
    o->u64 = 0x0123456789abcdefULL + seed;
    memcpy(o->buf, "hello", 5);
    o->buf[0] = seed;
    for (int i = 0; i < 2; i++) {
        o->inner[i].a = (uint16_t)(0xbeef + i + seed);
        o->inner[i].b[0] = o->inner[i].b[1] = o->inner[i].b[2] = (uint8_t)(i + seed);
    }
    o->added_in_v2 = 0xfeed0000u + seed;
    if (!o->blob) {
        o->blob = g_byte_array_new();
    }
    g_byte_array_set_size(o->blob, 0);
    g_byte_array_append(o->blob, (const guint8 *)"blob-payload", 12);
    o->blob->data[0] = seed;
}

/* Compare the state that vmstate carries (not the bookkeeping). */
static void outer_assert_equal(const Outer *a, const Outer *b)
{
    g_assert_cmpint(a->on, ==, b->on);
    g_assert_cmpuint(a->u8, ==, b->u8);
    g_assert_cmpuint(a->u16, ==, b->u16);
    g_assert_cmpmem(a->u32, sizeof(a->u32), b->u32, sizeof(b->u32));
    g_assert_cmphex(a->u64, ==, b->u64);
    g_assert_cmpmem(a->buf, 5, b->buf, 5);
    g_assert_cmpmem(a->inner, sizeof(a->inner), b->inner, sizeof(b->inner));
    g_assert_cmphex(a->added_in_v2, ==, b->added_in_v2);
    g_assert_cmpmem(a->blob->data, a->blob->len, b->blob->data, b->blob->len);
}

static Outer state_a, state_b;
static Simple simple;

static void setup(void)
{
    vmstate_unregister(&outer_v2, &state_a);
    vmstate_unregister(&outer_v1, &state_a);
    vmstate_unregister(&simple_vmsd, &simple);
    outer_fill(&state_a, 1);
    outer_fill(&state_b, 2);
    state_a.post_loads = 0;
    state_a.reject_blob = false;
    simple.x = 0x11111111;
    vmstate_register("outer", 0, &outer_v2, &state_a);
    vmstate_register("simple", 0, &simple_vmsd, &simple);
}

static GByteArray *save_stream(void)
{
    GByteArray *out = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    g_assert_true(vmstate_save_all(out, &err));
    g_assert_no_error(err);
    return out;
}

static void test_round_trip_every_field_kind(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GError) err = NULL;
    Outer saved = {0};

    setup();
    s = save_stream();
    outer_fill(&saved, 1);
    outer_fill(&state_a, 9);
    simple.x = 0;
    g_assert_true(vmstate_load_all(s->data, s->len, &err));
    g_assert_no_error(err);
    outer_assert_equal(&state_a, &saved);
    g_assert_cmphex(simple.x, ==, 0x11111111);
    g_assert_cmpint(state_a.post_loads, ==, 1);
    g_byte_array_unref(saved.blob);
}

static void test_stream_layout_is_documented_format(void)
{
    g_autoptr(GByteArray) s = NULL;
    static const uint8_t head[] = {'T', 'P', 'V', 'M', 0, 0, 0, 1, 5, 'o', 'u',
                                   't', 'e', 'r', 0,   0, 0, 0, 0, 0, 0,   2};

    setup();
    s = save_stream();
    g_assert_cmpmem(s->data, sizeof(head), head, sizeof(head));
    /* payload length (u64 BE): 1+1+2+16+8+5+2*(2+3)+4 fields + 12 blob = 59 */
    g_assert_cmpmem(s->data + sizeof(head), 8, "\0\0\0\0\0\0\0\x3b", 8);
    /* u16 field big-endian right after bool and u8 */
    g_assert_cmphex(s->data[sizeof(head) + 8 + 2], ==, 0x12);
    g_assert_cmphex(s->data[sizeof(head) + 8 + 3], ==, 0x35);
    /* ends with the end marker */
    g_assert_cmphex(s->data[s->len - 1], ==, 0);
}

static void test_older_section_version_keeps_new_fields(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GError) err = NULL;

    setup();
    /* save as the version-1 build would */
    vmstate_unregister(&outer_v2, &state_a);
    vmstate_register("outer", 0, &outer_v1, &state_a);
    state_a.added_in_v2 = 0x77777777;
    s = save_stream();
    vmstate_unregister(&outer_v1, &state_a);
    vmstate_register("outer", 0, &outer_v2, &state_a);
    state_a.added_in_v2 = 0x12345678;
    state_a.u8 = 0;
    g_assert_true(vmstate_load_all(s->data, s->len, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state_a.u8, ==, 1);
    /* absent from a v1 stream: untouched */
    g_assert_cmphex(state_a.added_in_v2, ==, 0x12345678);
}

/* Load `s` expecting failure with a message containing `needle`, and check
 * that nothing changed. */
static void expect_refused(const uint8_t *data, size_t len, const char *needle)
{
    g_autoptr(GError) err = NULL;
    Outer before = {0};
    uint32_t simple_before = simple.x;

    outer_fill(&before, 0);
    memcpy(&before, &state_a, offsetof(Outer, blob));
    g_byte_array_set_size(before.blob, 0);
    g_byte_array_append(before.blob, state_a.blob->data, state_a.blob->len);
    g_assert_false(vmstate_load_all(data, len, &err));
    g_assert_nonnull(err);
    if (needle && !strstr(err->message, needle)) {
        g_error("message '%s' does not contain '%s'", err->message, needle);
    }
    outer_assert_equal(&state_a, &before);
    g_assert_cmphex(simple.x, ==, simple_before);
    g_assert_cmpint(state_a.post_loads, ==, 0);
    g_byte_array_unref(before.blob);
}

/* Modify the saved state so that a successful load would be visible. */
static void scramble_state(void)
{
    outer_fill(&state_a, 0x42);
    simple.x = 0x22222222;
}

static void test_every_truncation_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;

    setup();
    s = save_stream();
    scramble_state();
    for (size_t cut = 0; cut < s->len; cut++) {
        expect_refused(s->data, cut, NULL);
    }
}

static void test_truncated_section_is_named(void)
{
    g_autoptr(GByteArray) s = NULL;

    setup();
    s = save_stream();
    scramble_state();
    /* cut inside the second section's payload: header 8, outer section 14+8+59 */
    expect_refused(s->data, 8 + 22 + 59 + 1 + 6 + 16 + 2,
                   "section 'simple' instance 0 is truncated");
}

static void test_unknown_section_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;

    setup();
    s = save_stream();
    vmstate_unregister(&simple_vmsd, &simple);
    vmstate_register("simple", 1, &simple_vmsd, &simple);
    scramble_state();
    expect_refused(s->data, s->len, "unknown section 'simple' instance 0");
}

static void test_duplicate_section_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GByteArray) dup = g_byte_array_new();
    size_t simple_len = 1 + 6 + 16 + 4;

    setup();
    s = save_stream();
    /* header + outer + simple + simple again + end */
    g_byte_array_append(dup, s->data, s->len - 1);
    g_byte_array_append(dup, s->data + s->len - 1 - simple_len, (guint)simple_len);
    g_byte_array_append(dup, (const guint8 *)"", 1);
    scramble_state();
    expect_refused(dup->data, dup->len, "section 'simple' instance 0 appears twice");
}

static void test_newer_section_version_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;
    size_t simple_len = 1 + 6 + 16 + 4;
    uint8_t *ver;

    setup();
    s = save_stream();
    ver = s->data + s->len - 1 - simple_len + 1 + 6 + 4;
    g_assert_cmpmem(ver, 4, "\0\0\0\x03", 4);
    ver[3] = 4;
    scramble_state();
    expect_refused(
        s->data, s->len,
        "section 'simple' instance 0 has version 4, newer than the supported 3");
    ver[3] = 1;
    expect_refused(
        s->data, s->len,
        "section 'simple' instance 0 has version 1, older than the oldest supported 2");
}

static void test_newer_stream_version_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;

    setup();
    s = save_stream();
    s->data[7] = 2;
    scramble_state();
    expect_refused(s->data, s->len, "stream version 2 is not supported");
    s->data[7] = 1;
    s->data[0] = 'X';
    expect_refused(s->data, s->len, "not a tpmvm state stream");
}

static void test_corrupt_content_is_refused(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GByteArray) longer = g_byte_array_new();
    size_t outer_payload = 8 + 22;

    setup();
    s = save_stream();
    scramble_state();
    /* bool field with value 2 */
    s->data[outer_payload] = 2;
    expect_refused(s->data, s->len, "field 'on' has invalid boolean value 2");
    s->data[outer_payload] = 1;
    /* the section's own check hook refuses its extra payload */
    state_a.reject_blob = true;
    s->data[outer_payload + 59 - 12] = 0xee;
    expect_refused(s->data, s->len, "section 'outer' instance 0: blob is corrupt");
    state_a.reject_blob = false;
    /* bytes after the end marker */
    g_byte_array_append(longer, s->data, s->len);
    g_byte_array_append(longer, (const guint8 *)"zz", 2);
    expect_refused(longer->data, longer->len, "2 unexpected bytes after the end marker");
}

static void test_fixed_section_length_must_match(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GByteArray) bad = g_byte_array_new();
    size_t simple_len = 1 + 6 + 16 + 4;
    size_t simple_start;

    setup();
    s = save_stream();
    simple_start = s->len - 1 - simple_len;
    /* same stream with the 'simple' payload one byte longer */
    g_byte_array_append(bad, s->data, (guint)(simple_start + 1 + 6 + 8));
    g_byte_array_append(bad, (const guint8 *)"\0\0\0\0\0\0\0\x05", 8);
    g_byte_array_append(bad, s->data + simple_start + 1 + 6 + 16, 4);
    g_byte_array_append(bad, (const guint8 *)"\x99\0", 2);
    scramble_state();
    expect_refused(bad->data, bad->len,
                   "section 'simple' instance 0 has 5 bytes of payload, expected 4");
}

static void test_random_corruption_never_half_applies(void)
{
    g_autoptr(GByteArray) s = NULL;
    g_autoptr(GRand) rand = g_rand_new_with_seed(1234);

    setup();
    s = save_stream();
    for (int round = 0; round < 2000; round++) {
        g_autoptr(GByteArray) c = g_byte_array_new();
        g_autoptr(GError) err = NULL;
        g_byte_array_append(c, s->data, s->len);
        for (int k = 0; k < 3; k++) {
            c->data[g_rand_int_range(rand, 0, (gint32)c->len)] =
                (uint8_t)g_rand_int(rand);
        }
        scramble_state();
        state_a.post_loads = 0;
        if (vmstate_load_all(c->data, c->len, &err)) {
            /* a corruption inside plain data can load; then everything applied */
            g_assert_cmpint(state_a.post_loads, ==, 1);
            continue;
        }
        g_assert_nonnull(err);
        g_assert_cmpint(state_a.post_loads, ==, 0);
        g_assert_cmphex(simple.x, ==, 0x22222222);
        g_assert_cmphex(state_a.u64, ==, 0x0123456789abcdefULL + 0x42);
    }
}

static void test_load_one_checks_before_applying(void)
{
    g_autoptr(GByteArray) one = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    Simple t = {0xabcdef01};

    g_assert_true(vmstate_save_one(&simple_vmsd, &t, one, &err));
    g_assert_cmpuint(one->len, ==, 4);
    t.x = 0;
    g_assert_true(vmstate_load_one(&simple_vmsd, &t, one->data, one->len, 3, &err));
    g_assert_cmphex(t.x, ==, 0xabcdef01);
    t.x = 5;
    g_assert_false(vmstate_load_one(&simple_vmsd, &t, one->data, 3, 3, &err));
    g_assert_nonnull(strstr(err->message, "field 'x' is truncated"));
    g_assert_cmphex(t.x, ==, 5);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmstate/round-trip/every-field-kind",
                    test_round_trip_every_field_kind);
    g_test_add_func("/vmstate/format/stream-layout-matches-docs",
                    test_stream_layout_is_documented_format);
    g_test_add_func("/vmstate/version/older-section-keeps-newer-fields",
                    test_older_section_version_keeps_new_fields);
    g_test_add_func("/vmstate/refuse/every-truncation", test_every_truncation_is_refused);
    g_test_add_func("/vmstate/refuse/truncated-section-is-named",
                    test_truncated_section_is_named);
    g_test_add_func("/vmstate/refuse/unknown-section", test_unknown_section_is_refused);
    g_test_add_func("/vmstate/refuse/duplicate-section",
                    test_duplicate_section_is_refused);
    g_test_add_func("/vmstate/refuse/newer-or-too-old-section-version",
                    test_newer_section_version_is_refused);
    g_test_add_func("/vmstate/refuse/newer-stream-version-or-bad-magic",
                    test_newer_stream_version_is_refused);
    g_test_add_func("/vmstate/refuse/corrupt-content", test_corrupt_content_is_refused);
    g_test_add_func("/vmstate/refuse/fixed-section-length-must-match",
                    test_fixed_section_length_must_match);
    g_test_add_func("/vmstate/atomic/random-corruption-never-half-applies",
                    test_random_corruption_never_half_applies);
    g_test_add_func("/vmstate/load-one/checks-before-applying",
                    test_load_one_checks_before_applying);
    return g_test_run();
}
