/*
 * JSON tree and printers for tpmvm-img; see img-json.h.
 */
#include <string.h>

#include "img-json.h"

typedef enum { JV_OBJ, JV_ARR, JV_STR, JV_INT, JV_BOOL } JType;

typedef struct JMember {
    char *key;
    JVal *val;
    unsigned seq;
} JMember;

struct JVal {
    JType type;
    char *str;
    int64_t num;
    bool b;
    GPtrArray *items; /* JMember* for objects, JVal* for arrays */
    unsigned next_seq;
};

static JVal *jv_new(JType t)
{
    JVal *v = g_new0(JVal, 1);

    v->type = t;
    return v;
}

JVal *jv_obj(void)
{
    JVal *v = jv_new(JV_OBJ);

    v->items = g_ptr_array_new();
    return v;
}

JVal *jv_arr(void)
{
    JVal *v = jv_new(JV_ARR);

    v->items = g_ptr_array_new();
    return v;
}

JVal *jv_str(const char *s)
{
    JVal *v = jv_new(JV_STR);

    v->str = g_strdup(s);
    return v;
}

JVal *jv_int(int64_t n)
{
    JVal *v = jv_new(JV_INT);

    v->num = n;
    return v;
}

JVal *jv_bool(bool b)
{
    JVal *v = jv_new(JV_BOOL);

    v->b = b;
    return v;
}

/* QEMU's QDict bucket for a key: the TDB hash modulo 512. */
static unsigned qdict_bucket(const char *name)
{
    uint32_t value = 0x238F13AFu * (uint32_t)strlen(name);

    for (unsigned i = 0; name[i]; i++) {
        value += (uint32_t)(unsigned char)name[i] << (i * 5 % 24);
    }
    return (1103515243u * value + 12345u) % 512;
}

static gint member_cmp(gconstpointer a, gconstpointer b)
{
    const JMember *x = *(JMember *const *)a, *y = *(JMember *const *)b;
    unsigned bx = qdict_bucket(x->key), by = qdict_bucket(y->key);

    if (bx != by) {
        return bx < by ? -1 : 1;
    }
    return x->seq > y->seq ? -1 : 1; /* newest first within a bucket */
}

void jv_obj_add(JVal *obj, const char *key, JVal *v)
{
    JMember *m = g_new0(JMember, 1);

    m->key = g_strdup(key);
    m->val = v;
    m->seq = obj->next_seq++;
    g_ptr_array_add(obj->items, m);
    g_ptr_array_sort(obj->items, member_cmp);
}

void jv_arr_add(JVal *arr, JVal *v)
{
    g_ptr_array_add(arr->items, v);
}

void jv_free(JVal *v)
{
    if (!v) {
        return;
    }
    if (v->items) {
        for (guint i = 0; i < v->items->len; i++) {
            if (v->type == JV_OBJ) {
                JMember *m = g_ptr_array_index(v->items, i);
                g_free(m->key);
                jv_free(m->val);
                g_free(m);
            } else {
                jv_free(g_ptr_array_index(v->items, i));
            }
        }
        g_ptr_array_unref(v->items);
    }
    g_free(v->str);
    g_free(v);
}

static void print_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        default:
            if (*p < 0x20) {
                g_string_append_printf(out, "\\u%04x", *p);
            } else {
                g_string_append_c(out, *p);
            }
        }
    }
    g_string_append_c(out, '"');
}

static void print_json(GString *out, const JVal *v, int level)
{
    switch (v->type) {
    case JV_STR:
        print_string(out, v->str);
        return;
    case JV_INT:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, v->num);
        return;
    case JV_BOOL:
        g_string_append(out, v->b ? "true" : "false");
        return;
    default:
        break;
    }
    g_string_append(out, v->type == JV_OBJ ? "{" : "[");
    for (guint i = 0; i < v->items->len; i++) {
        g_string_append(out, i ? ",\n" : "\n");
        g_string_append_printf(out, "%*s", (level + 1) * 4, "");
        if (v->type == JV_OBJ) {
            JMember *m = g_ptr_array_index(v->items, i);
            print_string(out, m->key);
            g_string_append(out, ": ");
            print_json(out, m->val, level + 1);
        } else {
            print_json(out, g_ptr_array_index(v->items, i), level + 1);
        }
    }
    g_string_append_printf(out, "\n%*s%s", level * 4, "", v->type == JV_OBJ ? "}" : "]");
}

void jv_print_json(GString *out, const JVal *v)
{
    print_json(out, v, 0);
}

static void print_scalar(GString *out, const JVal *v)
{
    if (v->type == JV_STR) {
        g_string_append(out, v->str);
    } else if (v->type == JV_INT) {
        g_string_append_printf(out, "%" G_GINT64_FORMAT, v->num);
    } else {
        g_string_append(out, v->b ? "true" : "false");
    }
}

static void print_human_value(GString *out, const char *label, const JVal *v, int indent)
{
    if (v->type == JV_OBJ || v->type == JV_ARR) {
        g_string_append_printf(out, "%*s%s:\n", indent * 4, "", label);
        if (v->type == JV_OBJ) {
            jv_print_human(out, v, indent + 1);
        } else {
            for (guint i = 0; i < v->items->len; i++) {
                g_autofree char *l = g_strdup_printf("[%u]", i);
                print_human_value(out, l, g_ptr_array_index(v->items, i), indent + 1);
            }
        }
        return;
    }
    g_string_append_printf(out, "%*s%s: ", indent * 4, "", label);
    print_scalar(out, v);
    g_string_append_c(out, '\n');
}

void jv_print_human(GString *out, const JVal *obj, int indent)
{
    for (guint i = 0; i < obj->items->len; i++) {
        JMember *m = g_ptr_array_index(obj->items, i);
        g_autofree char *label = g_strdup(m->key);
        for (char *p = label; *p; p++) {
            if (*p == '-') {
                *p = ' ';
            }
        }
        print_human_value(out, label, m->val, indent);
    }
}
