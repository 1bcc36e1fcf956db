/*
 * JSON plumbing for QMP: framing a byte stream into JSON texts (the parsing
 * itself is json-glib's) and writing replies in QEMU's compact layout.
 */
#include <math.h>
#include <string.h>

#include "monitor/monitor-internal.h"

void json_framer_init(JsonFramer *f, size_t limit, unsigned max_depth, JsonFrameFn fn,
                      void *opaque)
{
    memset(f, 0, sizeof(*f));
    f->buf = g_string_new(NULL);
    f->limit = limit;
    f->max_depth = max_depth;
    f->fn = fn;
    f->opaque = opaque;
}

static void framer_clear(JsonFramer *f)
{
    g_string_truncate(f->buf, 0);
    f->depth = 0;
    f->in_string = 0;
    f->escape = false;
    f->in_scalar = false;
    f->discarding = false;
}

void json_framer_reset(JsonFramer *f)
{
    framer_clear(f);
}

void json_framer_destroy(JsonFramer *f)
{
    if (f->buf) {
        g_string_free(f->buf, TRUE);
        f->buf = NULL;
    }
}

/* Report an error for the current text and skip the rest of it. */
static void framer_fail(JsonFramer *f, const char *msg)
{
    g_string_truncate(f->buf, 0);
    f->discarding = true;
    f->fn(f->opaque, NULL, 0, msg);
}

static void framer_append(JsonFramer *f, uint8_t c)
{
    if (f->discarding) {
        return;
    }
    if (f->buf->len >= f->limit) {
        g_autofree char *msg = g_strdup_printf(
            "JSON parse error, input exceeds %zu bytes; the rest of it is ignored",
            f->limit);
        framer_fail(f, msg);
        return;
    }
    g_string_append_c(f->buf, (char)c);
}

/* The current text ended: hand it on unless it was already reported. */
static void framer_complete(JsonFramer *f)
{
    bool skip = f->discarding;

    f->discarding = false;
    f->in_scalar = false;
    f->depth = 0;
    if (!skip) {
        /* The callback may feed more input re-entrantly; give it its own copy. */
        g_autofree char *text = g_strndup(f->buf->str, f->buf->len);
        size_t len = f->buf->len;

        g_string_truncate(f->buf, 0);
        f->fn(f->opaque, text, len, NULL);
    } else {
        g_string_truncate(f->buf, 0);
    }
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Ends a top-level scalar such as 12 or true. */
static bool is_delimiter(uint8_t c)
{
    return is_space(c) || strchr("{}[]\"',:", c) != NULL;
}

void json_framer_feed(JsonFramer *f, const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = data[i];

        /* QMP spec "Forcing the JSON parser into known-good state". */
        if (c == 0xff || (c < 0x20 && !is_space(c))) {
            bool pending = !f->discarding &&
                           (f->buf->len || f->depth || f->in_string || f->in_scalar);
            framer_clear(f);
            if (pending) {
                g_autofree char *msg =
                    g_strdup_printf("JSON parse error, invalid byte 0x%02x; the partial "
                                    "input was dropped",
                                    c);
                f->fn(f->opaque, NULL, 0, msg);
            }
            i++;
            continue;
        }
        if (f->in_string) {
            framer_append(f, c);
            if (f->escape) {
                f->escape = false;
            } else if (c == '\\') {
                f->escape = true;
            } else if (c == f->in_string) {
                f->in_string = 0;
                if (f->depth == 0) {
                    framer_complete(f);
                }
            }
            i++;
            continue;
        }
        if (f->in_scalar) {
            if (is_delimiter(c)) {
                framer_complete(f);
                continue; /* the delimiter starts something new: look again */
            }
            framer_append(f, c);
            i++;
            continue;
        }
        i++;
        if (f->depth == 0) {
            if (is_space(c)) {
                continue;
            }
            switch (c) {
            case '{':
            case '[':
                f->depth = 1;
                framer_append(f, c);
                break;
            case '"':
            case '\'':
                f->in_string = (char)c;
                framer_append(f, c);
                break;
            case '}':
            case ']':
            case ':':
            case ',': {
                g_autofree char *msg =
                    g_strdup_printf("JSON parse error, unexpected '%c'", c);
                f->fn(f->opaque, NULL, 0, msg);
                break;
            }
            default:
                f->in_scalar = true;
                framer_append(f, c);
                break;
            }
            continue;
        }
        framer_append(f, c);
        if (c == '"' || c == '\'') {
            f->in_string = (char)c;
        } else if (c == '{' || c == '[') {
            f->depth++;
            if (f->depth > f->max_depth && !f->discarding) {
                framer_fail(f, "JSON nesting depth limit exceeded");
            }
        } else if (c == '}' || c == ']') {
            f->depth--;
            if (f->depth == 0) {
                framer_complete(f);
            }
        }
    }
}

static void append_string(GString *out, const char *s)
{
    const char *p = s;

    g_string_append_c(out, '"');
    while (*p) {
        gunichar c = g_utf8_get_char_validated(p, -1);

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            c = 0xfffd; /* not UTF-8: replace the byte, keep going */
            p++;
        } else {
            p = g_utf8_next_char(p);
        }
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                g_string_append_printf(out, "\\u%04x", c);
            } else if (c < 0x80) {
                g_string_append_c(out, (char)c);
            } else if (c < 0x10000) {
                g_string_append_printf(out, "\\u%04X", c);
            } else {
                /* RFC 8259 §7: astral characters as a UTF-16 surrogate pair */
                c -= 0x10000;
                g_string_append_printf(out, "\\u%04X\\u%04X", 0xd800 | (c >> 10),
                                       0xdc00 | (c & 0x3ff));
            }
        }
    }
    g_string_append_c(out, '"');
}

static void append_indent(GString *out, int level)
{
    g_string_append_c(out, '\n');
    for (int i = 0; i < level; i++) {
        g_string_append(out, "    ");
    }
}

static void append_value(GString *out, JsonNode *node)
{
    GType t = json_node_get_value_type(node);

    if (t == G_TYPE_INT64) {
        g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
    } else if (t == G_TYPE_DOUBLE) {
        double d = json_node_get_double(node);
        char buf[G_ASCII_DTOSTR_BUF_SIZE];

        if (!isfinite(d)) {
            g_string_append(out, "null"); /* JSON has no inf/nan */
        } else {
            g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), d));
        }
    } else if (t == G_TYPE_BOOLEAN) {
        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
    } else if (t == G_TYPE_STRING) {
        append_string(out, json_node_get_string(node));
    } else {
        g_string_append(out, "null");
    }
}

static void append_node(GString *out, JsonNode *node, bool pretty, int level)
{
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT: {
        JsonObject *obj = json_node_get_object(node);
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        bool first = true;

        g_string_append_c(out, '{');
        json_object_iter_init_ordered(&iter, obj);
        while (json_object_iter_next_ordered(&iter, &name, &member)) {
            if (!first) {
                g_string_append_c(out, ',');
                if (!pretty) {
                    g_string_append_c(out, ' ');
                }
            }
            first = false;
            if (pretty) {
                append_indent(out, level + 1);
            }
            append_string(out, name);
            g_string_append(out, ": ");
            append_node(out, member, pretty, level + 1);
        }
        if (pretty && !first) {
            append_indent(out, level);
        }
        g_string_append_c(out, '}');
        break;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *arr = json_node_get_array(node);
        guint n = json_array_get_length(arr);

        g_string_append_c(out, '[');
        for (guint i = 0; i < n; i++) {
            if (i) {
                g_string_append_c(out, ',');
                if (!pretty) {
                    g_string_append_c(out, ' ');
                }
            }
            if (pretty) {
                append_indent(out, level + 1);
            }
            append_node(out, json_array_get_element(arr, i), pretty, level + 1);
        }
        if (pretty && n) {
            append_indent(out, level);
        }
        g_string_append_c(out, ']');
        break;
    }
    case JSON_NODE_VALUE:
        append_value(out, node);
        break;
    case JSON_NODE_NULL:
    default:
        g_string_append(out, "null");
        break;
    }
}

void qmp_json_append(GString *out, JsonNode *node, bool pretty)
{
    append_node(out, node, pretty, 0);
}
