/*
 * Fuzz target for the vmstate loader (hw/core/vmstate.c): a snapshot's device
 * state comes from a disk image, so vmstate_load_all() sees hostile streams.
 *
 * Input: a whole stream, as vmstate_load_all() takes it (format in
 * docs/vmstate.md). Registered sections, all reset to a fixed, non-zero
 * baseline before each input:
 *   "fuzz-plain"  v3 (min 2): scalar fields of every kind, an array, a
 *                 buffer, and a field that exists since v3
 *   "fuzz-nested" v2 (min 1): arrays of structs holding arrays of structs,
 *                 with a field of the innermost struct that exists since v2
 *   "fuzz-blob"   v1, instances 0 and 1: a field plus extra payload through
 *                 check/load hooks (count, items, checksum), and a post_load
 *                 that derives a value from what was loaded
 *   "tpm-tis"     v1: the real TIS device section with the test backend
 *
 * Checks beyond "does not crash":
 *   - a refused stream sets an error that starts with "vmstate: " and is
 *     printable UTF-8 (it reaches terminals and QMP), leaves every
 *     registered state byte-for-byte as it was, and runs no post_load;
 *   - an accepted stream runs post_load exactly once for each section it
 *     holds and leaves absent sections untouched; saving the result and
 *     loading that again succeeds, changes nothing, and saves identically.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "hw/core/vmstate.h"
#include "hw/tpm/tpm_tis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BLOB_MAX_ITEMS 16
#define BLOB_INSTANCES 2

typedef struct FuzzPlain {
    bool on;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32[3];
    uint64_t u64;
    uint8_t buf[7];
    uint32_t since_v3;
    int post_loads;
} FuzzPlain;

typedef struct FuzzLeaf {
    uint8_t tag;
    uint16_t v[2];
    bool flag;
    uint8_t since_v2;
} FuzzLeaf;

typedef struct FuzzMid {
    uint32_t id;
    FuzzLeaf leaf[3];
    uint8_t raw[6];
} FuzzMid;

typedef struct FuzzNested {
    uint16_t count;
    FuzzMid mid[2];
    uint64_t tail;
    int post_loads;
} FuzzNested;

typedef struct FuzzBlob {
    uint32_t gen;
    uint8_t n_items;
    uint8_t items[BLOB_MAX_ITEMS][4];
    uint32_t sum; /* derived by post_load */
    int post_loads;
    int load_calls; /* the load hook ran (phase 2) */
} FuzzBlob;

static const VMStateField plain_fields[] = {
    {.name = "on", .type = VMS_BOOL, .offset = offsetof(FuzzPlain, on)},
    {.name = "u8", .type = VMS_U8, .offset = offsetof(FuzzPlain, u8)},
    {.name = "u16", .type = VMS_U16, .offset = offsetof(FuzzPlain, u16)},
    {.name = "u32", .type = VMS_U32, .offset = offsetof(FuzzPlain, u32), .num = 3},
    {.name = "u64", .type = VMS_U64, .offset = offsetof(FuzzPlain, u64)},
    {.name = "buf", .type = VMS_BUFFER, .offset = offsetof(FuzzPlain, buf), .size = 7},
    {.name = "since_v3",
     .type = VMS_U32,
     .offset = offsetof(FuzzPlain, since_v3),
     .version_id = 3},
    {.name = NULL, .type = VMS_END},
};

static bool plain_post_load(void *opaque, int version_id, GError **errp)
{
    ((FuzzPlain *)opaque)->post_loads++;
    return true;
}

static const VMStateDescription plain_vmsd = {
    .name = "fuzz-plain",
    .version_id = 3,
    .minimum_version_id = 2,
    .fields = plain_fields,
    .post_load = plain_post_load,
};

static const VMStateField leaf_fields[] = {
    {.name = "tag", .type = VMS_U8, .offset = offsetof(FuzzLeaf, tag)},
    {.name = "v", .type = VMS_U16, .offset = offsetof(FuzzLeaf, v), .num = 2},
    {.name = "flag", .type = VMS_BOOL, .offset = offsetof(FuzzLeaf, flag)},
    {.name = "since_v2",
     .type = VMS_U8,
     .offset = offsetof(FuzzLeaf, since_v2),
     .version_id = 2},
    {.name = NULL, .type = VMS_END},
};

static const VMStateDescription leaf_vmsd = {
    .name = "fuzz-leaf",
    .version_id = 2,
    .fields = leaf_fields,
};

static const VMStateField mid_fields[] = {
    {.name = "id", .type = VMS_U32, .offset = offsetof(FuzzMid, id)},
    {.name = "leaf",
     .type = VMS_STRUCT,
     .offset = offsetof(FuzzMid, leaf),
     .size = sizeof(FuzzLeaf),
     .num = 3,
     .vmsd = &leaf_vmsd},
    {.name = "raw", .type = VMS_BUFFER, .offset = offsetof(FuzzMid, raw), .size = 6},
    {.name = NULL, .type = VMS_END},
};

static const VMStateDescription mid_vmsd = {
    .name = "fuzz-mid",
    .version_id = 2,
    .fields = mid_fields,
};

static const VMStateField nested_fields[] = {
    {.name = "count", .type = VMS_U16, .offset = offsetof(FuzzNested, count)},
    {.name = "mid",
     .type = VMS_STRUCT,
     .offset = offsetof(FuzzNested, mid),
     .size = sizeof(FuzzMid),
     .num = 2,
     .vmsd = &mid_vmsd},
    {.name = "tail", .type = VMS_U64, .offset = offsetof(FuzzNested, tail)},
    {.name = NULL, .type = VMS_END},
};

static bool nested_post_load(void *opaque, int version_id, GError **errp)
{
    ((FuzzNested *)opaque)->post_loads++;
    return true;
}

static const VMStateDescription nested_vmsd = {
    .name = "fuzz-nested",
    .version_id = 2,
    .minimum_version_id = 1,
    .fields = nested_fields,
    .post_load = nested_post_load,
};

/* Blob extra payload: u8 n (<= 16), n x 4 bytes, u32 sum of those bytes (BE). */
static const VMStateField blob_fields[] = {
    {.name = "gen", .type = VMS_U32, .offset = offsetof(FuzzBlob, gen)},
    {.name = NULL, .type = VMS_END},
};

static uint32_t blob_sum(const uint8_t *items, size_t n)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < n * 4; i++) {
        sum += items[i];
    }
    return sum;
}

static bool blob_save(void *opaque, GByteArray *out, GError **errp)
{
    FuzzBlob *b = opaque;
    uint32_t sum = blob_sum(&b->items[0][0], b->n_items);
    uint8_t be[4] = {sum >> 24, sum >> 16, sum >> 8, sum};

    g_byte_array_append(out, &b->n_items, 1);
    g_byte_array_append(out, &b->items[0][0], b->n_items * 4u);
    g_byte_array_append(out, be, 4);
    return true;
}

static bool blob_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                       GError **errp)
{
    uint32_t sum;

    if (len < 5 || buf[0] > BLOB_MAX_ITEMS || len != 5 + buf[0] * 4u) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL, "blob length is wrong");
        return false;
    }
    sum = (uint32_t)buf[len - 4] << 24 | (uint32_t)buf[len - 3] << 16 |
          (uint32_t)buf[len - 2] << 8 | buf[len - 1];
    if (sum != blob_sum(buf + 1, buf[0])) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL, "blob checksum is wrong");
        return false;
    }
    return true;
}

static bool blob_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                      GError **errp)
{
    FuzzBlob *b = opaque;

    /* phase 2 only runs on what phase 1 accepted: a refusal here is a loader bug */
    if (!blob_check(opaque, buf, len, version_id, NULL)) {
        fprintf(stderr, "fuzz-vmstate: load hook got a payload its check refused\n");
        abort();
    }
    b->load_calls++;
    b->n_items = buf[0];
    memset(b->items, 0, sizeof(b->items));
    memcpy(b->items, buf + 1, buf[0] * 4u);
    return true;
}

static bool blob_post_load(void *opaque, int version_id, GError **errp)
{
    FuzzBlob *b = opaque;

    b->post_loads++;
    b->sum = blob_sum(&b->items[0][0], b->n_items);
    return true;
}

static const VMStateDescription blob_vmsd = {
    .name = "fuzz-blob",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = blob_fields,
    .save = blob_save,
    .check = blob_check,
    .load = blob_load,
    .post_load = blob_post_load,
};

/* Everything a load may touch, so that a snapshot is one memcmp. */
typedef struct FuzzStates {
    FuzzPlain plain;
    FuzzNested nested;
    FuzzBlob blob[BLOB_INSTANCES];
} FuzzStates;

static FuzzStates *st;
static TPMTISState *tis;
static TPMBackend *backend;
static IRQLine *irq;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz-vmstate: invariant broken: %s\n", what);
    abort();
}

static void irq_handler(void *opaque, int n, int level)
{
}

static void fuzz_init(void)
{
    g_autoptr(GError) err = NULL;

    /* a GLib critical is a broken precondition: a bug, not noise */
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    /* a small buffer keeps the TIS section (and its seeds) short */
    backend = tpm_backend_create_from_string("test,id=fuzz0,buffer-size=64", NULL, &err);
    if (!backend) {
        fprintf(stderr, "fuzz-vmstate: %s\n", err ? err->message : "no backend");
        abort();
    }
    irq = irq_lines_new(irq_handler, NULL, 1);
    tis = g_new0(TPMTISState, 1);
    st = g_new0(FuzzStates, 1);
    vmstate_register("fuzz-plain", 0, &plain_vmsd, &st->plain);
    vmstate_register("fuzz-nested", 0, &nested_vmsd, &st->nested);
    for (int i = 0; i < BLOB_INSTANCES; i++) {
        vmstate_register("fuzz-blob", i, &blob_vmsd, &st->blob[i]);
    }
    vmstate_register("tpm-tis", 0, &tpm_tis_vmstate, tis);
}

/* The same recognisable state before every input. */
static void states_reset(void)
{
    memset(st, 0, sizeof(*st));
    st->plain.on = true;
    st->plain.u8 = 0xa5;
    st->plain.u16 = 0x1234;
    for (int i = 0; i < 3; i++) {
        st->plain.u32[i] = 0x01020304u * (i + 1);
    }
    st->plain.u64 = 0x1122334455667788ull;
    memcpy(st->plain.buf, "baseln", 7);
    st->plain.since_v3 = 0xc0ffee;
    st->nested.count = 7;
    for (int m = 0; m < 2; m++) {
        st->nested.mid[m].id = 100 + m;
        for (int l = 0; l < 3; l++) {
            FuzzLeaf *leaf = &st->nested.mid[m].leaf[l];
            leaf->tag = (uint8_t)(m * 3 + l);
            leaf->v[0] = 0xbeef;
            leaf->v[1] = (uint16_t)l;
            leaf->flag = l & 1;
            leaf->since_v2 = 0x5a;
        }
        memset(st->nested.mid[m].raw, 0x3c + m, 6);
    }
    st->nested.tail = 0xfeedfacecafebeefull;
    for (int i = 0; i < BLOB_INSTANCES; i++) {
        st->blob[i].gen = 42 + i;
        st->blob[i].n_items = 2;
        memcpy(st->blob[i].items, "abcdefgh", 8);
        st->blob[i].sum = blob_sum(&st->blob[i].items[0][0], 2);
    }
    memset(tis, 0, sizeof(*tis));
    tpm_tis_init(tis, backend, irq, 5);
    if (!tpm_tis_reset(tis, NULL)) {
        fail("the TIS did not reset");
    }
}

typedef struct Snapshot {
    FuzzStates states;
    TPMTISState *tis;
} Snapshot;

static void snapshot_take(Snapshot *s)
{
    memcpy(&s->states, st, sizeof(*st));
    s->tis = g_memdup2(tis, sizeof(*tis));
}

static bool snapshot_equal(const Snapshot *s)
{
    return memcmp(&s->states, st, sizeof(*st)) == 0 &&
           memcmp(s->tis, tis, sizeof(*tis)) == 0;
}

static void snapshot_clear(Snapshot *s)
{
    g_free(s->tis);
}

/* Messages reach terminals and QMP: printable text only. */
static bool message_is_printable(const char *msg)
{
    if (!g_utf8_validate(msg, -1, NULL)) {
        return false;
    }
    for (const char *p = msg; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            return false;
        }
    }
    return true;
}

/* Which registered sections an accepted stream holds (it parsed, so walk it). */
typedef struct Present {
    bool plain, nested, tis;
    bool blob[BLOB_INSTANCES];
} Present;

static void stream_sections(const uint8_t *data, size_t size, Present *p)
{
    size_t pos = 8;

    memset(p, 0, sizeof(*p));
    while (pos < size && data[pos]) {
        size_t nlen = data[pos++];
        const char *name = (const char *)data + pos;
        uint32_t inst;
        uint64_t plen = 0;

        pos += nlen;
        inst = (uint32_t)data[pos] << 24 | (uint32_t)data[pos + 1] << 16 |
               (uint32_t)data[pos + 2] << 8 | data[pos + 3];
        for (int i = 0; i < 8; i++) {
            plen = plen << 8 | data[pos + 8 + i];
        }
        pos += 16 + plen;
        if (nlen == 10 && !memcmp(name, "fuzz-plain", 10)) {
            p->plain = true;
        } else if (nlen == 11 && !memcmp(name, "fuzz-nested", 11)) {
            p->nested = true;
        } else if (nlen == 7 && !memcmp(name, "tpm-tis", 7)) {
            p->tis = true;
        } else if (nlen == 9 && !memcmp(name, "fuzz-blob", 9) && inst < BLOB_INSTANCES) {
            p->blob[inst] = true;
        }
    }
}

static void check_accepted(const uint8_t *data, size_t size, const Snapshot *before)
{
    Present p;
    g_autoptr(GByteArray) s1 = g_byte_array_new();
    g_autoptr(GByteArray) s2 = g_byte_array_new();
    Snapshot after;
    GError *err = NULL;

    stream_sections(data, size, &p);
    if (st->plain.post_loads != before->states.plain.post_loads + p.plain ||
        st->nested.post_loads != before->states.nested.post_loads + p.nested) {
        fail("post_load did not run exactly once per loaded section");
    }
    if (!p.plain && memcmp(&st->plain, &before->states.plain, sizeof(st->plain))) {
        fail("a section absent from the stream changed");
    }
    if (!p.nested && memcmp(&st->nested, &before->states.nested, sizeof(st->nested))) {
        fail("a section absent from the stream changed");
    }
    if (!p.tis && memcmp(tis, before->tis, sizeof(*tis))) {
        fail("the TIS changed although the stream has no tpm-tis section");
    }
    for (int i = 0; i < BLOB_INSTANCES; i++) {
        FuzzBlob *b = &st->blob[i];
        const FuzzBlob *was = &before->states.blob[i];

        if (b->post_loads != was->post_loads + p.blob[i] ||
            b->load_calls != was->load_calls + p.blob[i]) {
            fail("a blob's load/post_load did not run exactly once");
        }
        if (!p.blob[i] && memcmp(b, was, sizeof(*b))) {
            fail("a blob instance absent from the stream changed");
        }
        if (b->n_items > BLOB_MAX_ITEMS ||
            b->sum != blob_sum(&b->items[0][0], b->n_items)) {
            fail("a blob's derived state is inconsistent");
        }
    }

    /* What was accepted must save, and its own save must load back to the same. */
    if (!vmstate_save_all(s1, &err)) {
        fprintf(stderr, "fuzz-vmstate: save after load: %s\n", err->message);
        fail("saving an accepted state failed");
    }
    snapshot_take(&after);
    if (!vmstate_load_all(s1->data, s1->len, &err)) {
        fprintf(stderr, "fuzz-vmstate: reload: %s\n", err->message);
        fail("the loader refused its own saved stream");
    }
    /* post_load counters moved by one per section; compare everything else */
    after.states.plain.post_loads++;
    after.states.nested.post_loads++;
    for (int i = 0; i < BLOB_INSTANCES; i++) {
        after.states.blob[i].post_loads++;
        after.states.blob[i].load_calls++;
    }
    if (!snapshot_equal(&after)) {
        fail("loading a saved stream changed the state");
    }
    snapshot_clear(&after);
    if (!vmstate_save_all(s2, NULL) || s1->len != s2->len ||
        memcmp(s1->data, s2->data, s1->len) != 0) {
        fail("save, load, save gave a different stream");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    Snapshot before;

    if (!st) {
        fuzz_init();
    }
    states_reset();
    snapshot_take(&before);
    if (vmstate_load_all(data, size, &err)) {
        if (err) {
            fail("success with an error set");
        }
        check_accepted(data, size, &before);
    } else {
        if (!err || !g_str_has_prefix(err->message, "vmstate: ")) {
            fail("a refused stream without a 'vmstate: ' error");
        }
        if (!message_is_printable(err->message)) {
            fprintf(stderr, "fuzz-vmstate: message: %s\n", err->message);
            fail("an error message with control characters or invalid UTF-8");
        }
        if (!snapshot_equal(&before)) {
            fprintf(stderr, "fuzz-vmstate: after: %s\n", err->message);
            fail("a refused stream changed registered state");
        }
    }
    snapshot_clear(&before);
    return 0;
}
