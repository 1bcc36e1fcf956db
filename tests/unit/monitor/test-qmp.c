/*
 * The QMP session engine without a transport: bytes in, replies out.
 * Greeting, negotiation, id echo, every request error, framing of split and
 * batched input, limits, resynchronisation and event broadcast.
 */
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "util/error.h"

#define GREETING                                                                         \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, "    \
    "\"package\": \"tpmvm\"}, \"capabilities\": []}}\n"

typedef struct TestClient {
    QmpSession *s;
    GString *out; /* bytes not yet taken by take_reply */
} TestClient;

static void test_client_output(void *opaque, const char *buf, size_t len)
{
    TestClient *c = opaque;

    g_string_append_len(c->out, buf, len);
}

static TestClient *test_client_new(bool pretty)
{
    TestClient *c = g_new0(TestClient, 1);

    c->out = g_string_new(NULL);
    c->s = qmp_session_new(test_client_output, c, pretty);
    qmp_session_open(c->s);
    return c;
}

static void test_client_free(TestClient *c)
{
    qmp_session_free(c->s);
    g_string_free(c->out, TRUE);
    g_free(c);
}

static void send_str(TestClient *c, const char *text)
{
    qmp_session_feed(c->s, (const uint8_t *)text, strlen(text));
}

/* Number of complete lines waiting. */
static guint pending_lines(TestClient *c)
{
    guint n = 0;

    for (gsize i = 0; i < c->out->len; i++) {
        n += c->out->str[i] == '\n';
    }
    return n;
}

/* Take the next output line (compact mode: one JSON text per line). */
static char *take_line(TestClient *c)
{
    char *nl = memchr(c->out->str, '\n', c->out->len);
    char *line;

    g_assert_nonnull(nl);
    line = g_strndup(c->out->str, nl - c->out->str);
    g_string_erase(c->out, 0, nl - c->out->str + 1);
    return line;
}

static JsonNode *take_reply(TestClient *c)
{
    g_autofree char *line = take_line(c);
    g_autoptr(GError) err = NULL;
    JsonNode *node = json_from_string(line, &err);

    g_assert_no_error(err);
    g_assert_nonnull(node);
    g_assert_cmpint(json_node_get_node_type(node), ==, JSON_NODE_OBJECT);
    return node;
}

/* Take a reply that must be an error of `klass` whose desc starts with `desc`. */
static void expect_error(TestClient *c, const char *klass, const char *desc)
{
    g_autoptr(JsonNode) reply = take_reply(c);
    JsonObject *obj = json_node_get_object(reply);
    JsonObject *e;

    g_assert_true(json_object_has_member(obj, "error"));
    e = json_object_get_object_member(obj, "error");
    g_assert_cmpstr(json_object_get_string_member(e, "class"), ==, klass);
    g_assert_true(g_str_has_prefix(json_object_get_string_member(e, "desc"), desc));
}

static void negotiate(TestClient *c)
{
    g_free(take_line(c)); /* skip the greeting */

    send_str(c, "{\"execute\": \"qmp_capabilities\"}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {}}");
    g_assert_true(qmp_session_negotiated(c->s));
}

static TestClient *ready_client(void)
{
    TestClient *c = test_client_new(false);

    negotiate(c);
    return c;
}

/* Test-only commands that exercise the dispatcher's argument checking. */
static JsonNode *x_test_echo(JsonObject *args, GError **errp)
{
    return json_node_init_object(json_node_alloc(), args);
}

static JsonNode *x_test_fail(JsonObject *args, GError **errp)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                "Device 'tpm9' not found");
    return NULL;
}

static JsonNode *x_test_helpers(JsonObject *args, GError **errp)
{
    const char *s;
    bool b;
    int64_t i;
    JsonObject *ret;
    JsonNode *node;

    if (!qmp_arg_str(args, "s", true, &s, errp) ||
        !qmp_arg_bool(args, "b", true, &b, errp) ||
        !qmp_arg_int(args, "i", false, 42, &i, errp)) {
        return NULL;
    }
    ret = json_object_new();
    json_object_set_string_member(ret, "s", s);
    json_object_set_boolean_member(ret, "b", b);
    json_object_set_int_member(ret, "i", i);
    node = json_node_init_object(json_node_alloc(), ret);
    json_object_unref(ret);
    return node;
}

static JsonNode *x_test_precap(JsonObject *args, GError **errp)
{
    return NULL;
}

static void test_greeting_matches_qemu_shape(void)
{
    TestClient *c = test_client_new(false);

    g_assert_cmpstr(c->out->str, ==, GREETING);
    test_client_free(c);
}

static void test_commands_before_negotiation_fail(void)
{
    TestClient *c = test_client_new(false);
    g_free(take_line(c)); /* skip the greeting */

    send_str(c, "{\"execute\": \"query-version\"}");
    expect_error(c, "CommandNotFound",
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
    send_str(c, "{\"execute\": \"no-such-command\"}");
    expect_error(c, "CommandNotFound",
                 "Expecting capabilities negotiation with 'qmp_capabilities'");
    g_assert_false(qmp_session_negotiated(c->s));
    test_client_free(c);
}

static void test_precap_flag_allows_command(void)
{
    TestClient *c = test_client_new(false);
    g_free(take_line(c)); /* skip the greeting */

    send_str(c, "{\"execute\": \"x-test-precap\"}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {}}");
    test_client_free(c);
}

static void test_capabilities_twice_rejected(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"qmp_capabilities\", \"id\": 2}");
    expect_error(c, "CommandNotFound",
                 "Capabilities negotiation is already complete, command ignored");
    test_client_free(c);
}

static void test_unknown_capability_rejected(void)
{
    TestClient *c = test_client_new(false);
    g_free(take_line(c)); /* skip the greeting */

    send_str(
        c, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
    expect_error(c, "GenericError", "Capability 'oob' not available");
    g_assert_false(qmp_session_negotiated(c->s));
    send_str(c, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {}}");
    test_client_free(c);
}

static void test_id_is_echoed(void)
{
    TestClient *c = test_client_new(false);
    g_free(take_line(c)); /* skip the greeting */
    g_autofree char *a = NULL, *b = NULL, *d = NULL, *e = NULL;

    send_str(c, "{\"execute\": \"query-version\", \"id\": 7}");
    a = take_line(c);
    g_assert_true(g_str_has_suffix(a, ", \"id\": 7}"));
    send_str(c, "{\"execute\": \"qmp_capabilities\", \"id\": \"neg\"}");
    b = take_line(c);
    g_assert_cmpstr(b, ==, "{\"return\": {}, \"id\": \"neg\"}");
    send_str(c,
             "{\"id\": {\"a\": [1, 2.5, null, true]}, \"execute\": \"query-commands\"}");
    d = take_line(c);
    g_assert_true(g_str_has_suffix(d, ", \"id\": {\"a\": [1, 2.5, null, true]}}"));
    send_str(c, "{\"execute\": \"nope\", \"id\": \"x\"}");
    e = take_line(c);
    g_assert_cmpstr(
        e, ==,
        "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
        "nope has not been found\"}, \"id\": \"x\"}");
    test_client_free(c);
}

static void test_invalid_json(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\" \"query-version\"}");
    expect_error(c, "GenericError", "JSON parse error, 1:");
    send_str(c, "bad ");
    expect_error(c, "GenericError", "JSON parse error, ");
    send_str(c, "}");
    expect_error(c, "GenericError", "JSON parse error, unexpected '}'");
    /* still usable afterwards */
    send_str(c, "{\"execute\": \"query-version\", \"id\": 1}");
    g_autoptr(JsonNode) ok = take_reply(c);
    g_assert_true(json_object_has_member(json_node_get_object(ok), "return"));
    test_client_free(c);
}

static void test_non_object_input(void)
{
    TestClient *c = ready_client();
    const char *inputs[] = {"[1, 2]", "\"str\"", "5 ", "true\n", "null\n"};

    for (guint i = 0; i < G_N_ELEMENTS(inputs); i++) {
        send_str(c, inputs[i]);
        expect_error(c, "GenericError", "QMP input must be a JSON object");
    }
    g_assert_cmpuint(pending_lines(c), ==, 0);
    test_client_free(c);
}

static void test_request_member_errors(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"id\": 3}");
    {
        g_autofree char *line = take_line(c);
        g_assert_cmpstr(line, ==,
                        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input "
                        "lacks member 'execute'\"}, \"id\": 3}");
    }
    send_str(c, "{\"execute\": 5}");
    expect_error(c, "GenericError", "QMP input member 'execute' must be a string");
    send_str(c, "{\"execute\": \"query-version\", \"arguments\": 5}");
    expect_error(c, "GenericError", "QMP input member 'arguments' must be an object");
    send_str(c, "{\"execute\": \"query-version\", \"extra\": 5}");
    expect_error(c, "GenericError", "QMP input member 'extra' is unexpected");
    send_str(c, "{\"execute\": \"no-such-command\"}");
    expect_error(c, "CommandNotFound", "The command no-such-command has not been found");
    test_client_free(c);
}

static void test_declared_argument_errors(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"human-monitor-command\"}");
    expect_error(c, "GenericError", "Parameter 'command-line' is missing");
    send_str(c, "{\"execute\": \"human-monitor-command\", "
                "\"arguments\": {\"command-line\": 5}}");
    expect_error(c, "GenericError",
                 "Invalid parameter type for 'command-line', expected: string");
    send_str(c, "{\"execute\": \"query-version\", \"arguments\": {\"a\": 1}}");
    expect_error(c, "GenericError", "Parameter 'a' is unexpected");
    send_str(c,
             "{\"execute\": \"x-test-echo\", \"arguments\": {\"s\": \"x\", \"i\": 1.5}}");
    expect_error(c, "GenericError", "Invalid parameter type for 'i', expected: integer");
    send_str(c,
             "{\"execute\": \"x-test-echo\", \"arguments\": {\"s\": \"x\", \"o\": []}}");
    expect_error(c, "GenericError", "Invalid parameter type for 'o', expected: object");
    send_str(c, "{\"execute\": \"x-test-echo\", \"arguments\": {\"s\": null}}");
    expect_error(c, "GenericError", "Invalid parameter type for 's', expected: string");
    send_str(c, "{\"execute\": \"x-test-echo\", "
                "\"arguments\": {\"s\": \"x\", \"b\": true, \"o\": {\"k\": [1]}}}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==,
                    "{\"return\": {\"s\": \"x\", \"b\": true, \"o\": {\"k\": [1]}}}");
    test_client_free(c);
}

static void test_helper_argument_errors(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"x-test-helpers\", \"arguments\": {\"b\": true}}");
    expect_error(c, "GenericError", "Parameter 's' is missing");
    send_str(
        c, "{\"execute\": \"x-test-helpers\", \"arguments\": {\"s\": \"a\", \"b\": 1}}");
    expect_error(c, "GenericError", "Invalid parameter type for 'b', expected: boolean");
    send_str(c, "{\"execute\": \"x-test-helpers\", "
                "\"arguments\": {\"s\": \"a\", \"b\": false, \"i\": \"1\"}}");
    expect_error(c, "GenericError", "Invalid parameter type for 'i', expected: integer");
    send_str(
        c,
        "{\"execute\": \"x-test-helpers\", \"arguments\": {\"s\": \"a\", \"b\": false}}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {\"s\": \"a\", \"b\": false, \"i\": 42}}");
    test_client_free(c);
}

static void test_handler_error_class(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"x-test-fail\", \"id\": 9}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(
        line, ==,
        "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'tpm9' "
        "not found\"}, \"id\": 9}");
    test_client_free(c);
}

static void test_multiple_objects_in_one_read(void)
{
    TestClient *c = ready_client();

    send_str(
        c, "{\"execute\": \"query-version\", \"id\": 1}{\"execute\": \"query-version\", "
           "\"id\": 2}\n  {\"execute\":\"query-version\",\"id\":3}");
    g_assert_cmpuint(pending_lines(c), ==, 3);
    for (int i = 1; i <= 3; i++) {
        g_autoptr(JsonNode) r = take_reply(c);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "id"), ==, i);
    }
    test_client_free(c);
}

static void test_object_split_byte_by_byte(void)
{
    TestClient *c = ready_client();
    const char *req =
        "{\"execute\": \"x-test-echo\", \"arguments\": {\"s\": \"a}\\\"{[\"}, "
        "\"id\": \"split\"}";

    for (size_t i = 0; req[i]; i++) {
        g_assert_cmpuint(pending_lines(c), ==, 0);
        qmp_session_feed(c->s, (const uint8_t *)&req[i], 1);
    }
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {\"s\": \"a}\\\"{[\"}, \"id\": \"split\"}");
    test_client_free(c);
}

/* json-glib takes 'single-quoted' strings, as QEMU does: frame them too. */
static void test_single_quoted_strings(void)
{
    TestClient *c = ready_client();

    send_str(c, "{'execute': 'query-version', 'id': 'q}\"'}");
    g_autoptr(JsonNode) r = take_reply(c);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r), "id"), ==,
                    "q}\"");
    test_client_free(c);
}

static void test_oversized_input_rejected(void)
{
    TestClient *c = ready_client();
    GString *big =
        g_string_new("{\"execute\": \"x-test-echo\", \"arguments\": {\"s\": \"");

    for (int i = 0; i < 2 * QMP_INPUT_MAX_BYTES; i++) {
        g_string_append_c(big, 'x');
    }
    g_string_append(big, "\"}}{\"execute\": \"query-version\", \"id\": \"after\"}");
    send_str(c, big->str);
    g_string_free(big, TRUE);
    expect_error(c, "GenericError", "JSON parse error, input exceeds 1048576 bytes");
    {
        g_autoptr(JsonNode) r = take_reply(c);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r), "id"), ==,
                        "after");
    }
    g_assert_cmpuint(pending_lines(c), ==, 0);
    test_client_free(c);
}

static void on_frame_count(void *opaque, const char *text, size_t len, const char *error)
{
    guint *count = opaque;

    (*count)++;
}

/* An endless unterminated object must not grow the buffer past the limit. */
static void test_framer_memory_is_bounded(void)
{
    JsonFramer f;
    guint frames = 0;
    g_autofree uint8_t *chunk = g_malloc(65536);

    json_framer_init(&f, 4096, 64, on_frame_count, &frames);
    json_framer_feed(&f, (const uint8_t *)"{\"a\": \"", 7);
    memset(chunk, 'y', 65536);
    for (int i = 0; i < 64; i++) {
        json_framer_feed(&f, chunk, 65536);
    }
    g_assert_cmpuint(frames, ==, 1); /* the one error */
    g_assert_cmpuint(f.buf->allocated_len, <=, 2 * 4096);
    json_framer_destroy(&f);
}

static void test_deep_nesting_rejected(void)
{
    TestClient *c = ready_client();
    GString *deep = g_string_new("{\"execute\": \"query-version\", \"id\": ");
    GString *ok = g_string_new("{\"execute\": \"query-version\", \"id\": ");

    for (int i = 0; i < 100000; i++) {
        g_string_append_c(deep, '[');
    }
    for (int i = 0; i < 100000; i++) {
        g_string_append_c(deep, ']');
    }
    g_string_append(deep, "}");
    send_str(c, deep->str);
    expect_error(c, "GenericError", "JSON nesting depth limit exceeded");
    g_assert_cmpuint(pending_lines(c), ==, 0);

    /* just under the limit is still fine (and echoed back whole) */
    for (int i = 0; i < QMP_INPUT_MAX_DEPTH - 1; i++) {
        g_string_append_c(ok, '[');
    }
    for (int i = 0; i < QMP_INPUT_MAX_DEPTH - 1; i++) {
        g_string_append_c(ok, ']');
    }
    g_string_append(ok, "}");
    send_str(c, ok->str);
    {
        g_autoptr(JsonNode) r = take_reply(c);
        g_assert_true(json_object_has_member(json_node_get_object(r), "return"));
    }
    g_string_free(deep, TRUE);
    g_string_free(ok, TRUE);
    test_client_free(c);
}

static void test_control_byte_resyncs(void)
{
    TestClient *c = ready_client();
    const uint8_t ff = 0xff;

    send_str(c, "{\"execute\": \"query-version\", \"arguments\": {\"x\": \"unterminated");
    qmp_session_feed(c->s, &ff, 1);
    expect_error(c, "GenericError", "JSON parse error, invalid byte 0xff");
    /* with nothing pending a resync byte is silent */
    qmp_session_feed(c->s, &ff, 1);
    send_str(c, "\x01{\"execute\": \"query-version\", \"id\": 5}");
    g_autoptr(JsonNode) r = take_reply(c);
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "id"), ==, 5);
    g_assert_cmpuint(pending_lines(c), ==, 0);
    test_client_free(c);
}

static void test_disconnect_mid_object(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"query-ver");
    qmp_session_close(c->s);
    g_assert_false(qmp_session_negotiated(c->s));
    g_assert_cmpuint(pending_lines(c), ==, 0);
    qmp_session_open(c->s);
    {
        g_autofree char *greeting = take_line(c);
        g_assert_cmpstr(greeting, ==,
                        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
                        "\"minor\": 1, \"major\": 0}, \"package\": \"tpmvm\"}, "
                        "\"capabilities\": []}}");
    }
    send_str(c, "{\"execute\": \"qmp_capabilities\", \"id\": 1}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": {}, \"id\": 1}");
    test_client_free(c);
}

static void test_events_reach_negotiated_sessions_only(void)
{
    TestClient *a = ready_client();
    TestClient *b = ready_client();
    TestClient *fresh = test_client_new(false);
    JsonObject *data = json_object_new();
    g_free(take_line(fresh)); /* skip the greeting */

    json_object_set_boolean_member(data, "guest", false);
    qmp_send_event("TEST_EVENT", data);
    for (int i = 0; i < 2; i++) {
        TestClient *c = i ? b : a;
        g_autoptr(JsonNode) ev = take_reply(c);
        JsonObject *obj = json_node_get_object(ev);
        JsonObject *ts = json_object_get_object_member(obj, "timestamp");

        g_assert_cmpstr(json_object_get_string_member(obj, "event"), ==, "TEST_EVENT");
        g_assert_false(json_object_get_boolean_member(
            json_object_get_object_member(obj, "data"), "guest"));
        g_assert_cmpint(json_object_get_int_member(ts, "seconds"), >, 1600000000);
        g_assert_cmpint(json_object_get_int_member(ts, "microseconds"), <, 1000000);
    }
    g_assert_cmpuint(pending_lines(fresh), ==, 0);

    qmp_session_close(b->s);
    qmp_send_event("NO_DATA", NULL);
    {
        g_autoptr(JsonNode) ev = take_reply(a);
        g_assert_false(json_object_has_member(json_node_get_object(ev), "data"));
    }
    g_assert_cmpuint(pending_lines(b), ==, 0);
    test_client_free(a);
    test_client_free(b);
    test_client_free(fresh);
}

static gpointer send_events_thread(gpointer data)
{
    for (int i = 0; i < 500; i++) {
        JsonObject *d = json_object_new();

        json_object_set_int_member(d, "n", i);
        qmp_send_event("THREAD_EVENT", d);
    }
    return NULL;
}

/* Events from another thread never interleave with replies mid-line. */
static void test_events_from_another_thread(void)
{
    TestClient *c = ready_client();
    GThread *t = g_thread_new("events", send_events_thread, NULL);
    guint events = 0, replies = 0;

    for (int i = 0; i < 500; i++) {
        send_str(c, "{\"execute\": \"query-version\"}");
    }
    g_thread_join(t);
    while (pending_lines(c)) {
        g_autoptr(JsonNode) r = take_reply(c);
        JsonObject *obj = json_node_get_object(r);

        if (json_object_has_member(obj, "event")) {
            g_assert_cmpint(json_object_get_int_member(
                                json_object_get_object_member(obj, "data"), "n"),
                            ==, events);
            events++;
        } else {
            g_assert_true(json_object_has_member(obj, "return"));
            replies++;
        }
    }
    g_assert_cmpuint(events, ==, 500);
    g_assert_cmpuint(replies, ==, 500);
    g_assert_cmpuint(c->out->len, ==, 0);
    test_client_free(c);
}

static void test_pretty_output(void)
{
    TestClient *c = test_client_new(true);

    g_assert_cmpstr(c->out->str, ==,
                    "{\n    \"QMP\": {\n        \"version\": {\n            \"qemu\": {\n"
                    "                \"micro\": 0,\n                \"minor\": 1,\n"
                    "                \"major\": 0\n            },\n"
                    "            \"package\": \"tpmvm\"\n        },\n"
                    "        \"capabilities\": []\n    }\n}\n");
    test_client_free(c);
}

static void test_query_commands_lists_registered(void)
{
    TestClient *c = ready_client();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    send_str(c, "{\"execute\": \"query-commands\"}");
    g_autoptr(JsonNode) r = take_reply(c);
    JsonArray *list = json_object_get_array_member(json_node_get_object(r), "return");

    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *e = json_array_get_object_element(list, i);
        g_hash_table_add(seen, (gpointer)json_object_get_string_member(e, "name"));
    }
    g_assert_true(g_hash_table_contains(seen, "qmp_capabilities"));
    g_assert_true(g_hash_table_contains(seen, "query-version"));
    g_assert_true(g_hash_table_contains(seen, "human-monitor-command"));
    g_assert_true(g_hash_table_contains(seen, "x-test-echo"));
    test_client_free(c);
}

static void test_query_version(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"query-version\"}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==,
                    "{\"return\": {\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, "
                    "\"package\": \"tpmvm\"}}");
    test_client_free(c);
}

static void test_human_monitor_command(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"human-monitor-command\", "
                "\"arguments\": {\"command-line\": \"info version\"}, \"id\": 1}");
    {
        g_autofree char *line = take_line(c);
        g_assert_cmpstr(line, ==, "{\"return\": \"0.1.0\\r\\n\", \"id\": 1}");
    }
    send_str(c, "{\"execute\": \"human-monitor-command\", "
                "\"arguments\": {\"command-line\": \"foo\"}}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==, "{\"return\": \"unknown command: 'foo'\\r\\n\"}");
    test_client_free(c);
}

static void test_output_escapes_non_ascii(void)
{
    TestClient *c = ready_client();

    send_str(c, "{\"execute\": \"x-test-echo\", \"arguments\": "
                "{\"s\": \"\xc3\xa9\\u0001\\n\\\\\xf0\x9f\x98\x80\"}}");
    g_autofree char *line = take_line(c);
    g_assert_cmpstr(line, ==,
                    "{\"return\": {\"s\": \"\\u00E9\\u0001\\n\\\\\\uD83D\\uDE00\"}}");
    test_client_free(c);
}

/* Random bytes, then a resync byte: the session must still answer. */
static void test_random_input_never_breaks_session(void)
{
    TestClient *c = ready_client();
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x51ab);
    const char alphabet[] = "{}[]\":,\\ \n0123456789abcdefxyz-.eEtrunl\xc3\xa9";
    uint8_t buf[512];

    for (int round = 0; round < 400; round++) {
        guint n = g_rand_int_range(rand, 1, sizeof(buf));

        for (guint i = 0; i < n; i++) {
            buf[i] =
                g_rand_int_range(rand, 0, 10) == 0
                    ? (uint8_t)g_rand_int_range(rand, 0, 256)
                    : (uint8_t)alphabet[g_rand_int_range(rand, 0, sizeof(alphabet) - 1)];
        }
        qmp_session_feed(c->s, buf, n);
        g_string_truncate(c->out, 0);
    }
    send_str(c, "\xff{\"execute\": \"query-version\", \"id\": \"alive\"}");
    /* skip errors from whatever the random bytes left pending */
    for (;;) {
        g_autoptr(JsonNode) r = take_reply(c);
        JsonObject *obj = json_node_get_object(r);

        if (json_object_has_member(obj, "return")) {
            g_assert_cmpstr(json_object_get_string_member(obj, "id"), ==, "alive");
            break;
        }
    }
    test_client_free(c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qmp_register_command_args("x-test-echo", x_test_echo, 0, "s:s,i:i?,b:b?,o:o?");
    qmp_register_command_args("x-test-fail", x_test_fail, 0, "");
    qmp_register_command("x-test-helpers", x_test_helpers, 0);
    qmp_register_command_args("x-test-precap", x_test_precap, QMP_ALLOW_PRECAP, NULL);

    g_test_add_func("/qmp/greeting/matches-qemu-shape", test_greeting_matches_qemu_shape);
    g_test_add_func("/qmp/negotiation/commands-before-capabilities-fail",
                    test_commands_before_negotiation_fail);
    g_test_add_func("/qmp/negotiation/precap-flag-allows-command",
                    test_precap_flag_allows_command);
    g_test_add_func("/qmp/negotiation/capabilities-twice-is-rejected",
                    test_capabilities_twice_rejected);
    g_test_add_func("/qmp/negotiation/unknown-capability-is-rejected",
                    test_unknown_capability_rejected);
    g_test_add_func("/qmp/reply/id-is-echoed", test_id_is_echoed);
    g_test_add_func("/qmp/errors/invalid-json-is-reported", test_invalid_json);
    g_test_add_func("/qmp/errors/non-object-input-is-rejected", test_non_object_input);
    g_test_add_func("/qmp/errors/bad-request-members-are-named",
                    test_request_member_errors);
    g_test_add_func("/qmp/errors/declared-arguments-are-checked",
                    test_declared_argument_errors);
    g_test_add_func("/qmp/errors/argument-helpers-use-qemu-messages",
                    test_helper_argument_errors);
    g_test_add_func("/qmp/errors/handler-error-keeps-its-class",
                    test_handler_error_class);
    g_test_add_func("/qmp/framing/several-objects-in-one-read",
                    test_multiple_objects_in_one_read);
    g_test_add_func("/qmp/framing/object-split-byte-by-byte",
                    test_object_split_byte_by_byte);
    g_test_add_func("/qmp/framing/single-quoted-strings", test_single_quoted_strings);
    g_test_add_func("/qmp/framing/oversized-input-is-rejected-then-resyncs",
                    test_oversized_input_rejected);
    g_test_add_func("/qmp/framing/memory-stays-bounded", test_framer_memory_is_bounded);
    g_test_add_func("/qmp/framing/deep-nesting-is-rejected", test_deep_nesting_rejected);
    g_test_add_func("/qmp/framing/control-byte-resyncs", test_control_byte_resyncs);
    g_test_add_func("/qmp/framing/disconnect-mid-object-starts-afresh",
                    test_disconnect_mid_object);
    g_test_add_func("/qmp/framing/random-input-never-breaks-session",
                    test_random_input_never_breaks_session);
    g_test_add_func("/qmp/events/reach-negotiated-sessions-only",
                    test_events_reach_negotiated_sessions_only);
    g_test_add_func("/qmp/events/from-another-thread-keep-lines-whole",
                    test_events_from_another_thread);
    g_test_add_func("/qmp/output/pretty-is-indented", test_pretty_output);
    g_test_add_func("/qmp/output/non-ascii-is-escaped", test_output_escapes_non_ascii);
    g_test_add_func("/qmp/commands/query-commands-lists-registered",
                    test_query_commands_lists_registered);
    g_test_add_func("/qmp/commands/query-version", test_query_version);
    g_test_add_func("/qmp/commands/human-monitor-command-runs-hmp",
                    test_human_monitor_command);
    return g_test_run();
}
