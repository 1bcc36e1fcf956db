/*
 * The QMP engine: the command table, request checking and dispatch, one
 * session per client (greeting, capabilities negotiation, replies) and event
 * broadcast. It knows nothing about chardevs: bytes come in through
 * qmp_session_feed and leave through the session's output callback.
 *
 * Reply shapes follow QEMU's QMP specification (docs/interop/qmp-spec):
 *   {"return": VALUE, "id": ID}
 *   {"error": {"class": CLASS, "desc": TEXT}, "id": ID}
 *   {"timestamp": {"seconds": S, "microseconds": U}, "event": NAME, "data": {...}}
 */
#include <stdio.h>
#include <string.h>

#include "config-host.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "util/error.h"
#include "util/trace.h"

typedef enum {
    QMP_ARG_STRING = 's',
    QMP_ARG_BOOL = 'b',
    QMP_ARG_INT = 'i',
    QMP_ARG_NUMBER = 'n',
    QMP_ARG_OBJECT = 'o',
    QMP_ARG_ARRAY = 'a',
    QMP_ARG_ANY = 'v',
} QmpArgType;

typedef struct QmpArgSpec {
    char *name;
    QmpArgType type;
    bool optional;
} QmpArgSpec;

typedef struct QmpCommand {
    char *name;
    QmpCommandFn fn;
    unsigned flags;
    QmpArgSpec *args; /* NULL: the handler checks its own arguments */
    size_t nargs;
} QmpCommand;

/* Written only by constructors before main(); read-only afterwards. */
static GHashTable *qmp_commands;

struct QmpSession {
    MonitorOutputFn out;
    void *opaque;
    bool pretty;
    bool negotiated; /* guarded by qmp_sessions_lock (events read it) */
    JsonFramer framer;
};

/*
 * Every live session, for event broadcast. Events may come from any thread,
 * so the list, each session's `negotiated` flag and all output writes are
 * under this lock; command handlers run without it.
 */
static GMutex qmp_sessions_lock;
static GList *qmp_sessions;

static const char *qmp_arg_type_name(QmpArgType t)
{
    switch (t) {
    case QMP_ARG_STRING:
        return "string";
    case QMP_ARG_BOOL:
        return "boolean";
    case QMP_ARG_INT:
        return "integer";
    case QMP_ARG_NUMBER:
        return "number";
    case QMP_ARG_OBJECT:
        return "object";
    case QMP_ARG_ARRAY:
        return "array";
    default:
        return "any";
    }
}

static bool qmp_arg_type_matches(JsonNode *node, QmpArgType t)
{
    JsonNodeType nt = json_node_get_node_type(node);
    GType vt = nt == JSON_NODE_VALUE ? json_node_get_value_type(node) : G_TYPE_INVALID;

    switch (t) {
    case QMP_ARG_STRING:
        return vt == G_TYPE_STRING;
    case QMP_ARG_BOOL:
        return vt == G_TYPE_BOOLEAN;
    case QMP_ARG_INT:
        return vt == G_TYPE_INT64;
    case QMP_ARG_NUMBER:
        return vt == G_TYPE_INT64 || vt == G_TYPE_DOUBLE;
    case QMP_ARG_OBJECT:
        return nt == JSON_NODE_OBJECT;
    case QMP_ARG_ARRAY:
        return nt == JSON_NODE_ARRAY;
    default:
        return true;
    }
}

static void qmp_set_type_error(GError **errp, const char *name, QmpArgType t)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "Invalid parameter type for '%s', expected: %s", name,
                qmp_arg_type_name(t));
}

static void qmp_set_missing_error(GError **errp, const char *name)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Parameter '%s' is missing",
                name);
}

/* Parse "a:s,b:i?" at registration; a malformed list is a programming error. */
static void qmp_parse_params(QmpCommand *cmd, const char *params)
{
    g_auto(GStrv) items = g_strsplit(params, ",", -1);
    guint n = g_strv_length(items);

    cmd->args = g_new0(QmpArgSpec, n ? n : 1);
    for (guint i = 0; i < n; i++) {
        char *item = g_strstrip(items[i]);
        char *colon = strchr(item, ':');
        QmpArgSpec *spec;

        if (!*item) {
            continue;
        }
        if (!colon || !strchr("sbinoav", colon[1]) || colon[1] == '\0' ||
            (colon[2] && strcmp(colon + 2, "?") != 0)) {
            g_error("QMP command '%s': bad parameter spec '%s' (want NAME:T[?])",
                    cmd->name, item);
        }
        spec = &cmd->args[cmd->nargs++];
        spec->name = g_strndup(item, colon - item);
        spec->type = (QmpArgType)colon[1];
        spec->optional = colon[2] == '?';
    }
}

static void qmp_register(const char *name, QmpCommandFn fn, unsigned flags,
                         const char *params)
{
    QmpCommand *cmd;

    if (!qmp_commands) {
        qmp_commands = g_hash_table_new(g_str_hash, g_str_equal);
    }
    if (g_hash_table_contains(qmp_commands, name)) {
        g_error("QMP command '%s' registered twice", name);
    }
    cmd = g_new0(QmpCommand, 1);
    cmd->name = g_strdup(name);
    cmd->fn = fn;
    cmd->flags = flags;
    if (params) {
        qmp_parse_params(cmd, params);
    }
    g_hash_table_insert(qmp_commands, cmd->name, cmd);
}

void qmp_register_command(const char *name, QmpCommandFn fn, unsigned flags)
{
    qmp_register(name, fn, flags, NULL);
}

void qmp_register_command_args(const char *name, QmpCommandFn fn, unsigned flags,
                               const char *params)
{
    qmp_register(name, fn, flags, params ? params : "");
}

static QmpCommand *qmp_find_command(const char *name)
{
    return qmp_commands ? g_hash_table_lookup(qmp_commands, name) : NULL;
}

bool qmp_arg_str(JsonObject *args, const char *name, bool required, const char **out,
                 GError **errp)
{
    JsonNode *node = args ? json_object_get_member(args, name) : NULL;

    if (!node) {
        if (required) {
            qmp_set_missing_error(errp, name);
            return false;
        }
        *out = NULL;
        return true;
    }
    if (!qmp_arg_type_matches(node, QMP_ARG_STRING)) {
        qmp_set_type_error(errp, name, QMP_ARG_STRING);
        return false;
    }
    *out = json_node_get_string(node);
    return true;
}

bool qmp_arg_bool(JsonObject *args, const char *name, bool def, bool *out, GError **errp)
{
    JsonNode *node = args ? json_object_get_member(args, name) : NULL;

    if (!node) {
        *out = def;
        return true;
    }
    if (!qmp_arg_type_matches(node, QMP_ARG_BOOL)) {
        qmp_set_type_error(errp, name, QMP_ARG_BOOL);
        return false;
    }
    *out = json_node_get_boolean(node);
    return true;
}

bool qmp_arg_int(JsonObject *args, const char *name, bool required, int64_t def,
                 int64_t *out, GError **errp)
{
    JsonNode *node = args ? json_object_get_member(args, name) : NULL;

    if (!node) {
        if (required) {
            qmp_set_missing_error(errp, name);
            return false;
        }
        *out = def;
        return true;
    }
    if (!qmp_arg_type_matches(node, QMP_ARG_INT)) {
        qmp_set_type_error(errp, name, QMP_ARG_INT);
        return false;
    }
    *out = json_node_get_int(node);
    return true;
}

/* Check `args` against a declared list, in QEMU's order: declared ones, then extras. */
static bool qmp_check_args(const QmpCommand *cmd, JsonObject *args, GError **errp)
{
    JsonObjectIter iter;
    const char *name;
    JsonNode *member;

    for (size_t i = 0; i < cmd->nargs; i++) {
        const QmpArgSpec *spec = &cmd->args[i];
        JsonNode *node = json_object_get_member(args, spec->name);

        if (!node) {
            if (!spec->optional) {
                qmp_set_missing_error(errp, spec->name);
                return false;
            }
            continue;
        }
        if (!qmp_arg_type_matches(node, spec->type)) {
            qmp_set_type_error(errp, spec->name, spec->type);
            return false;
        }
    }
    json_object_iter_init_ordered(&iter, args);
    while (json_object_iter_next_ordered(&iter, &name, &member)) {
        bool known = false;

        for (size_t i = 0; i < cmd->nargs && !known; i++) {
            known = strcmp(cmd->args[i].name, name) == 0;
        }
        if (!known) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Parameter '%s' is unexpected", name);
            return false;
        }
    }
    return true;
}

/* Serialise `obj` as one line and write it; takes ownership of obj. */
static void qmp_session_send(QmpSession *s, JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);
    g_autoptr(GString) text = g_string_sized_new(128);

    json_object_unref(obj);
    qmp_json_append(text, node, s->pretty);
    g_string_append_c(text, '\n');
    g_mutex_lock(&qmp_sessions_lock);
    s->out(s->opaque, text->str, text->len);
    g_mutex_unlock(&qmp_sessions_lock);
}

static void qmp_session_reply(QmpSession *s, JsonNode *ret, const GError *err,
                              JsonNode *id)
{
    JsonObject *reply = json_object_new();

    if (err) {
        JsonObject *e = json_object_new();

        json_object_set_string_member(e, "class", error_qmp_class(err));
        json_object_set_string_member(e, "desc", err->message);
        json_object_set_object_member(reply, "error", e);
    } else if (ret) {
        json_object_set_member(reply, "return", json_node_ref(ret));
    } else {
        /* json_node_init_object() takes its own reference: drop ours */
        g_autoptr(JsonObject) empty = json_object_new();

        json_object_set_member(reply, "return",
                               json_node_init_object(json_node_alloc(), empty));
    }
    if (id) {
        json_object_set_member(reply, "id", json_node_copy(id));
    }
    qmp_session_send(s, reply);
}

static void qmp_session_reply_error(QmpSession *s, JsonNode *id, TpmvmErrorCode code,
                                    const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void qmp_session_reply_error(QmpSession *s, JsonNode *id, TpmvmErrorCode code,
                                    const char *fmt, ...)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    err = g_error_new_literal(TPMVM_ERROR, code, msg);
    qmp_session_reply(s, NULL, err, id);
}

/* Run one request object. QMP spec: only "execute", "arguments", "id". */
static void qmp_session_dispatch(QmpSession *s, JsonObject *req)
{
    JsonNode *id = json_object_get_member(req, "id");
    JsonNode *exec = NULL;
    JsonObject *args = NULL;
    g_autoptr(JsonObject) empty = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) ret = NULL;
    JsonObjectIter iter;
    const char *member_name;
    JsonNode *member;
    const char *name;
    QmpCommand *cmd;

    json_object_iter_init_ordered(&iter, req);
    while (json_object_iter_next_ordered(&iter, &member_name, &member)) {
        if (strcmp(member_name, "execute") == 0) {
            if (!qmp_arg_type_matches(member, QMP_ARG_STRING)) {
                qmp_session_reply_error(s, id, TPMVM_ERROR_GENERIC,
                                        "QMP input member 'execute' must be a string");
                return;
            }
            exec = member;
        } else if (strcmp(member_name, "arguments") == 0) {
            if (json_node_get_node_type(member) != JSON_NODE_OBJECT) {
                qmp_session_reply_error(s, id, TPMVM_ERROR_GENERIC,
                                        "QMP input member 'arguments' must be an object");
                return;
            }
            args = json_node_get_object(member);
        } else if (strcmp(member_name, "id") != 0) {
            qmp_session_reply_error(s, id, TPMVM_ERROR_GENERIC,
                                    "QMP input member '%s' is unexpected", member_name);
            return;
        }
    }
    if (!exec) {
        qmp_session_reply_error(s, id, TPMVM_ERROR_GENERIC,
                                "QMP input lacks member 'execute'");
        return;
    }
    name = json_node_get_string(exec);
    cmd = qmp_find_command(name);
    trace_event("qmp_command", "session=%p name=%s", (void *)s, name);

    if (!qmp_session_negotiated(s)) {
        if (!cmd ||
            (strcmp(name, "qmp_capabilities") != 0 && !(cmd->flags & QMP_ALLOW_PRECAP))) {
            qmp_session_reply_error(
                s, id, TPMVM_ERROR_COMMAND_NOT_FOUND,
                "Expecting capabilities negotiation with 'qmp_capabilities'");
            return;
        }
    } else if (strcmp(name, "qmp_capabilities") == 0) {
        qmp_session_reply_error(s, id, TPMVM_ERROR_COMMAND_NOT_FOUND,
                                "Capabilities negotiation is already complete, "
                                "command ignored");
        return;
    }
    if (!cmd) {
        qmp_session_reply_error(s, id, TPMVM_ERROR_COMMAND_NOT_FOUND,
                                "The command %s has not been found", name);
        return;
    }
    if (!args) {
        empty = json_object_new();
        args = empty;
    }
    if (cmd->args && !qmp_check_args(cmd, args, &err)) {
        qmp_session_reply(s, NULL, err, id);
        return;
    }
    ret = cmd->fn(args, &err);
    if (err) {
        qmp_session_reply(s, NULL, err, id);
        return;
    }
    if (strcmp(name, "qmp_capabilities") == 0) {
        g_mutex_lock(&qmp_sessions_lock);
        s->negotiated = true;
        g_mutex_unlock(&qmp_sessions_lock);
    }
    qmp_session_reply(s, ret, NULL, id);
}

static bool qmp_hex4(const char *p, size_t avail, unsigned *out)
{
    *out = 0;
    if (avail < 4) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(p[i]);

        if (d < 0) {
            return false;
        }
        *out = *out << 4 | (unsigned)d;
    }
    return true;
}

/*
 * Every \u escape must have four hex digits, and a surrogate must be a pair:
 * a high one (D800-DBFF) followed by a \u escape of a low one (DC00-DFFF).
 * json-glib 1.6 does not check this: it takes the closing quote as a digit of
 * a short escape (so it disagrees with the framer on where a string ends),
 * leaks memory on some of these texts, and lets a lone surrogate through as
 * invalid UTF-8. Such text never reaches it.
 */
static bool qmp_text_has_bad_unicode_escape(const char *text, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned hi, lo;

        if (text[i] != '\\') {
            continue;
        }
        if (text[i + 1] != 'u') {
            i++; /* an escaped character, possibly a backslash */
            continue;
        }
        if (!qmp_hex4(text + i + 2, len - i - 2, &hi)) {
            return true;
        }
        i += 5;
        if (hi >= 0xdc00 && hi <= 0xdfff) {
            return true;
        }
        if (hi < 0xd800 || hi > 0xdbff) {
            continue;
        }
        if (len - i < 7 || text[i + 1] != '\\' || text[i + 2] != 'u' ||
            !qmp_hex4(text + i + 3, len - i - 3, &lo) || lo < 0xdc00 || lo > 0xdfff) {
            return true;
        }
        i += 6;
    }
    return false;
}

static void qmp_session_on_text(void *opaque, const char *text, size_t len,
                                const char *error)
{
    QmpSession *s = opaque;
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) err = NULL;
    JsonNode *root;

    if (error) {
        qmp_session_reply_error(s, NULL, TPMVM_ERROR_GENERIC, "%s", error);
        return;
    }
    if (qmp_text_has_bad_unicode_escape(text, len)) {
        qmp_session_reply_error(s, NULL, TPMVM_ERROR_GENERIC,
                                "JSON parse error, invalid \\u escape: it needs four hex "
                                "digits, and a surrogate must be a high-low pair");
        return;
    }
    parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, text, (gssize)len, &err)) {
        /* "<data>:1:5: Parse error: unexpected ..." -> "1:5: unexpected ..." */
        const char *detail = err->message;
        const char *tail;

        if (g_str_has_prefix(detail, "<data>:")) {
            detail += strlen("<data>:");
        }
        tail = strstr(detail, "Parse error: ");
        qmp_session_reply_error(s, NULL, TPMVM_ERROR_GENERIC, "JSON parse error, %.*s%s",
                                tail ? (int)(tail - detail) : (int)strlen(detail), detail,
                                tail ? tail + strlen("Parse error: ") : "");
        return;
    }
    root = json_parser_get_root(parser);
    if (!root || json_node_get_node_type(root) != JSON_NODE_OBJECT) {
        qmp_session_reply_error(s, NULL, TPMVM_ERROR_GENERIC,
                                "QMP input must be a JSON object");
        return;
    }
    qmp_session_dispatch(s, json_node_get_object(root));
}

QmpSession *qmp_session_new(MonitorOutputFn out, void *opaque, bool pretty)
{
    QmpSession *s = g_new0(QmpSession, 1);

    s->out = out;
    s->opaque = opaque;
    s->pretty = pretty;
    json_framer_init(&s->framer, QMP_INPUT_MAX_BYTES, QMP_INPUT_MAX_DEPTH,
                     qmp_session_on_text, s);
    g_mutex_lock(&qmp_sessions_lock);
    qmp_sessions = g_list_prepend(qmp_sessions, s);
    g_mutex_unlock(&qmp_sessions_lock);
    return s;
}

void qmp_session_free(QmpSession *s)
{
    if (!s) {
        return;
    }
    g_mutex_lock(&qmp_sessions_lock);
    qmp_sessions = g_list_remove(qmp_sessions, s);
    g_mutex_unlock(&qmp_sessions_lock);
    json_framer_destroy(&s->framer);
    g_free(s);
}

/* {"qemu": {"micro": M, "minor": N, "major": J}, "package": "tpmvm"} */
static JsonObject *qmp_version_object(void)
{
    JsonObject *ver = json_object_new();
    JsonObject *triple = json_object_new();
    unsigned major = 0, minor = 0, micro = 0;

    sscanf(TPMVM_VERSION, "%u.%u.%u", &major, &minor, &micro);
    json_object_set_int_member(triple, "micro", micro);
    json_object_set_int_member(triple, "minor", minor);
    json_object_set_int_member(triple, "major", major);
    json_object_set_object_member(ver, "qemu", triple);
    json_object_set_string_member(ver, "package", "tpmvm");
    return ver;
}

void qmp_session_open(QmpSession *s)
{
    JsonObject *greeting = json_object_new();
    JsonObject *qmp = json_object_new();

    json_framer_reset(&s->framer);
    g_mutex_lock(&qmp_sessions_lock);
    s->negotiated = false;
    g_mutex_unlock(&qmp_sessions_lock);

    json_object_set_object_member(qmp, "version", qmp_version_object());
    json_object_set_array_member(qmp, "capabilities", json_array_new());
    json_object_set_object_member(greeting, "QMP", qmp);
    qmp_session_send(s, greeting);
}

void qmp_session_close(QmpSession *s)
{
    json_framer_reset(&s->framer);
    g_mutex_lock(&qmp_sessions_lock);
    s->negotiated = false;
    g_mutex_unlock(&qmp_sessions_lock);
}

void qmp_session_feed(QmpSession *s, const uint8_t *buf, size_t len)
{
    json_framer_feed(&s->framer, buf, len);
}

bool qmp_session_negotiated(QmpSession *s)
{
    bool ret;

    g_mutex_lock(&qmp_sessions_lock);
    ret = s->negotiated;
    g_mutex_unlock(&qmp_sessions_lock);
    return ret;
}

void qmp_send_event(const char *name, JsonObject *data)
{
    JsonObject *ev = json_object_new();
    JsonObject *ts = json_object_new();
    g_autoptr(JsonNode) node = NULL;
    GString *compact = g_string_sized_new(128);
    GString *pretty = NULL;
    gint64 now = g_get_real_time();

    json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
    json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
    json_object_set_object_member(ev, "timestamp", ts);
    json_object_set_string_member(ev, "event", name);
    if (data) {
        json_object_set_object_member(ev, "data", data);
    }
    node = json_node_init_object(json_node_alloc(), ev);
    json_object_unref(ev);
    qmp_json_append(compact, node, false);
    g_string_append_c(compact, '\n');
    trace_event("qmp_event", "name=%s", name);

    g_mutex_lock(&qmp_sessions_lock);
    for (GList *l = qmp_sessions; l; l = l->next) {
        QmpSession *s = l->data;

        if (!s->negotiated) {
            continue;
        }
        if (s->pretty) {
            if (!pretty) {
                pretty = g_string_sized_new(256);
                qmp_json_append(pretty, node, true);
                g_string_append_c(pretty, '\n');
            }
            s->out(s->opaque, pretty->str, pretty->len);
        } else {
            s->out(s->opaque, compact->str, compact->len);
        }
    }
    g_mutex_unlock(&qmp_sessions_lock);
    g_string_free(compact, TRUE);
    if (pretty) {
        g_string_free(pretty, TRUE);
    }
}

/* The dispatcher flips the session to command mode when this succeeds. */
static JsonNode *qmp_cmd_capabilities(JsonObject *args, GError **errp)
{
    JsonNode *enable = json_object_get_member(args, "enable");

    if (enable) {
        JsonArray *caps = json_node_get_array(enable);

        for (guint i = 0; i < json_array_get_length(caps); i++) {
            JsonNode *cap = json_array_get_element(caps, i);

            if (!qmp_arg_type_matches(cap, QMP_ARG_STRING)) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "Invalid parameter type for 'enable[%u]', expected: string",
                            i);
                return NULL;
            }
            /* The greeting offers no capabilities, so none can be enabled. */
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Capability '%s' not available", json_node_get_string(cap));
            return NULL;
        }
    }
    return NULL;
}

static JsonNode *qmp_cmd_query_version(JsonObject *args, GError **errp)
{
    JsonObject *ver = qmp_version_object();
    JsonNode *node = json_node_init_object(json_node_alloc(), ver);

    json_object_unref(ver);
    return node;
}

static gint qmp_compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static JsonNode *qmp_cmd_query_commands(JsonObject *args, GError **errp)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    JsonArray *list = json_array_new();
    GHashTableIter iter;
    gpointer key;

    if (qmp_commands) {
        g_hash_table_iter_init(&iter, qmp_commands);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
            g_ptr_array_add(names, key);
        }
    }
    g_ptr_array_sort(names, qmp_compare_names);
    for (guint i = 0; i < names->len; i++) {
        JsonObject *entry = json_object_new();

        json_object_set_string_member(entry, "name", names->pdata[i]);
        json_array_add_object_element(list, entry);
    }
    JsonNode *node = json_node_init_array(json_node_alloc(), list);

    json_array_unref(list);
    return node;
}

/* Run a human monitor line and return its output as a string. */
static JsonNode *qmp_cmd_human_monitor_command(JsonObject *args, GError **errp)
{
    g_autofree char *output =
        hmp_run_line(json_object_get_string_member(args, "command-line"));
    JsonNode *node = json_node_alloc();

    json_node_init_string(node, output);
    return node;
}

static void __attribute__((constructor)) qmp_register_core_commands(void)
{
    qmp_register_command_args("qmp_capabilities", qmp_cmd_capabilities, QMP_ALLOW_PRECAP,
                              "enable:a?");
    qmp_register_command_args("query-version", qmp_cmd_query_version, 0, "");
    qmp_register_command_args("query-commands", qmp_cmd_query_commands, 0, "");
    qmp_register_command_args("human-monitor-command", qmp_cmd_human_monitor_command, 0,
                              "command-line:s,cpu-index:i?");
}
