/*
 * Fuzz target for the QMP session engine (monitor/qmp.c, monitor/qmp-json.c):
 * whatever a client sends over the QMP socket goes through the JSON framer,
 * json-glib, request checking and every registered command, in-process, on a
 * `pc` machine with the qtest accelerator and a TPM TIS over the test backend.
 *
 * Input: byte 0 is a flag byte (bit 0: pretty output; bits 1-7: chunk size
 * minus 1 for the second run), the rest is what the client sends.
 *
 * Checks beyond "does not crash":
 *   - every message the session writes is one JSON object in plain printable
 *     ASCII ending in a newline: the greeting first, then replies
 *     {"return": ...} or {"error": {"class": S, "desc": S}}, with an optional
 *     "id", and events {"event": S, "timestamp": {...}, "data"?};
 *   - there is exactly one reply for each JSON text (or framing error) in
 *     the input, counted by a separate framer with the same limits;
 *   - feeding the input in chunks gives the same messages as feeding it at
 *     once (each run starts with a running VM);
 *   - memory stays bounded: a framer with a 256-byte limit never buffers
 *     more than 256 bytes, and compact output stays within a fixed multiple
 *     of the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <json-glib/json-glib.h>

#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "hw/tpm/tpm_backend.h"
#include "monitor/monitor-internal.h"
#include "system/accel.h"
#include "system/main-loop.h"
#include "system/runstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SMALL_LIMIT 256
#define SMALL_DEPTH 16

static bool ready;
static TPMBackend *backend;

/* What one session wrote: one string per message. */
typedef struct Capture {
    GPtrArray *msgs;
    size_t bytes;
} Capture;

static void G_GNUC_NORETURN fail(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz-qmp: invariant broken: %s\n", what);
    if (msg) {
        fprintf(stderr, "fuzz-qmp: message: %.300s\n", msg);
    }
    abort();
}

static void die(const char *what, GError *err)
{
    fprintf(stderr, "fuzz-qmp: %s: %s\n", what, err ? err->message : "failed");
    abort();
}

static void fuzz_init(void)
{
    GError *err = NULL;
    const AccelClass *qtest_accel = accel_class_find("qtest");
    MachineState *ms;

    /* a GLib critical is a broken precondition: a bug, not noise */
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    main_loop_init();
    bql_lock();
    backend = tpm_backend_create_from_string("test,id=tpm0", NULL, &err);
    if (!backend) {
        die("tpm backend", err);
    }
    ms = machine_create(machine_class_find("pc"), 2 << 20, NULL, 1, &err);
    if (!ms || !qtest_accel || !qtest_accel->init_machine(ms, &err)) {
        die("machine", err);
    }
    accel_set_current(qtest_accel);
    ms->accel = qtest_accel->name;
    if (!device_create_from_string("tpm-tis,tpmdev=tpm0", NULL, &err)) {
        die("tpm-tis", err);
    }
    system_reset();
    vm_start(); /* as after start-up without -S */
    ready = true;
}

/* Every run starts with a running VM, whatever "stop" the input sent. */
static void vm_restart(void)
{
    if (!runstate_is_running()) {
        vm_start();
    }
}

static void capture_out(void *opaque, const char *buf, size_t len)
{
    Capture *c = opaque;

    if (len == 0 || buf[len - 1] != '\n') {
        fail("a message that does not end with a newline", NULL);
    }
    for (size_t i = 0; i < len; i++) {
        if ((buf[i] < 0x20 || buf[i] > 0x7e) && buf[i] != '\n') {
            g_autofree char *m = g_strndup(buf, len);
            fail("a message byte that is not printable ASCII", m);
        }
    }
    g_ptr_array_add(c->msgs, g_strndup(buf, len));
    c->bytes += len;
}

static bool member_is_string(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

/* Check the shape of one message; returns its kind: 'g' greeting, 'r' reply, 'e' event.
 */
static char check_message(const char *text, bool first, JsonParser *parser)
{
    g_autoptr(GError) err = NULL;
    JsonObject *o;
    JsonNode *root;
    guint members;

    if (!json_parser_load_from_data(parser, text, -1, &err)) {
        fail("a message that is not valid JSON", text);
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        fail("a message that is not a JSON object", text);
    }
    o = json_node_get_object(root);
    members = json_object_get_size(o);
    if (first) {
        if (members != 1 || !json_object_has_member(o, "QMP")) {
            fail("the first message is not the greeting", text);
        }
        return 'g';
    }
    if (json_object_has_member(o, "event")) {
        if (!member_is_string(o, "event") || !json_object_has_member(o, "timestamp") ||
            members != 2u + json_object_has_member(o, "data")) {
            fail("a malformed event", text);
        }
        return 'e';
    }
    members -= json_object_has_member(o, "id");
    if (members != 1) {
        fail("a reply without exactly one of return/error", text);
    }
    if (json_object_has_member(o, "error")) {
        JsonNode *e = json_object_get_member(o, "error");
        JsonObject *eo;

        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            fail("\"error\" is not an object", text);
        }
        eo = json_node_get_object(e);
        if (json_object_get_size(eo) != 2 || !member_is_string(eo, "class") ||
            !member_is_string(eo, "desc")) {
            fail("\"error\" is not {class, desc}", text);
        }
    } else if (!json_object_has_member(o, "return")) {
        fail("a reply without return or error", text);
    }
    return 'r';
}

/* Events carry the time: drop the digits of their timestamps for comparing. */
static char *without_time(const char *text)
{
    GString *out = g_string_new(NULL);

    for (const char *p = text; *p;) {
        if (g_str_has_prefix(p, "\"seconds\": ") ||
            g_str_has_prefix(p, "\"microseconds\": ")) {
            const char *colon = strchr(p, ':');

            g_string_append_len(out, p, colon + 2 - p);
            for (p = colon + 2; g_ascii_isdigit(*p); p++) {
            }
            continue;
        }
        g_string_append_c(out, *p++);
    }
    return g_string_free(out, FALSE);
}

/*
 * One session from greeting to close, fed in chunks of `chunk` bytes (0 = all
 * at once); `validate` checks every message. Returns the messages with the
 * timestamps of events blanked.
 */
static GPtrArray *run_session(const uint8_t *data, size_t size, bool pretty, size_t chunk,
                              bool validate, size_t *replies, size_t *out_bytes)
{
    Capture cap = {g_ptr_array_new_with_free_func(g_free), 0};
    QmpSession *s = qmp_session_new(capture_out, &cap, pretty);
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    GPtrArray *norm = g_ptr_array_new_with_free_func(g_free);

    qmp_session_open(s);
    if (chunk == 0) {
        qmp_session_feed(s, data, size);
    } else {
        for (size_t off = 0; off < size; off += chunk) {
            qmp_session_feed(s, data + off, MIN(chunk, size - off));
        }
    }
    qmp_session_close(s);
    qmp_session_free(s);

    *replies = 0;
    for (guint i = 0; validate && i < cap.msgs->len; i++) {
        const char *text = cap.msgs->pdata[i];
        char kind = check_message(text, i == 0, parser);

        *replies += kind == 'r';
    }
    /* the second run is compared message by message with the validated one */
    for (guint i = 0; i < cap.msgs->len; i++) {
        g_ptr_array_add(norm, without_time(cap.msgs->pdata[i]));
    }
    *out_bytes = cap.bytes;
    g_ptr_array_unref(cap.msgs);
    return norm;
}

static void count_text(void *opaque, const char *text, size_t len, const char *error)
{
    (*(size_t *)opaque)++;
}

static void ignore_text(void *opaque, const char *text, size_t len, const char *error)
{
    if (!error && len > SMALL_LIMIT) {
        fail("the small framer handed on a text over its limit", NULL);
    }
}

/* JSON texts and framing errors in the input: each one is owed a reply. */
static size_t count_requests(const uint8_t *data, size_t size)
{
    JsonFramer f;
    size_t n = 0;

    json_framer_init(&f, QMP_INPUT_MAX_BYTES, QMP_INPUT_MAX_DEPTH, count_text, &n);
    json_framer_feed(&f, data, size);
    json_framer_destroy(&f);
    return n;
}

/* A framer with a small limit, fed byte by byte, never holds more than it. */
static void check_framer_bound(const uint8_t *data, size_t size)
{
    JsonFramer f;

    json_framer_init(&f, SMALL_LIMIT, SMALL_DEPTH, ignore_text, NULL);
    for (size_t i = 0; i < size; i++) {
        json_framer_feed(&f, data + i, 1);
        if (f.buf->len > SMALL_LIMIT) {
            fail("the framer buffered more than its limit", NULL);
        }
    }
    json_framer_destroy(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) whole = NULL;
    g_autoptr(GPtrArray) chunked = NULL;
    size_t replies_whole, replies_chunked, requests, out_whole, out_chunked;
    bool pretty;
    size_t chunk;

    if (!ready) {
        fuzz_init();
    }
    if (size < 1) {
        return 0;
    }
    pretty = data[0] & 1;
    chunk = (data[0] >> 1) + 1;
    data++;
    size--;

    whole = run_session(data, size, pretty, 0, true, &replies_whole, &out_whole);
    vm_restart();
    chunked =
        run_session(data, size, pretty, chunk, false, &replies_chunked, &out_chunked);
    vm_restart();

    requests = count_requests(data, size);
    if (replies_whole != requests) {
        fprintf(stderr, "fuzz-qmp: %zu requests, %zu replies\n", requests, replies_whole);
        fail("not exactly one reply per request", NULL);
    }
    if (whole->len != chunked->len) {
        fail("feeding in chunks changed the number of messages", NULL);
    }
    for (guint i = 0; i < whole->len; i++) {
        if (strcmp(whole->pdata[i], chunked->pdata[i]) != 0) {
            fprintf(stderr, "fuzz-qmp: at once: %.300s\n", (char *)whole->pdata[i]);
            fail("feeding in chunks changed a message", chunked->pdata[i]);
        }
    }
    /* compact replies echo at most the request (id) plus a bounded message */
    if (!pretty && out_whole > 65536 + 8 * size + 512 * requests) {
        fail("output out of proportion to the input", NULL);
    }
    check_framer_bound(data, size);
    /* a command may have started something in the main loop: let it finish */
    tpm_backend_finish_sync(backend);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    return 0;
}
