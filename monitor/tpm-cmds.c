/*
 * TPM monitor commands in QEMU's JSON form:
 *   query-tpm         [{"model": "tpm-tis", "id": BACKEND-ID,
 *                       "options": {"type": TYPE, "data": {...}}}]
 *   query-tpm-models  ["tpm-tis"]
 *   query-tpm-types   ["builtin", "test"]
 * and the human "info tpm".
 */
#include <string.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_frontend.h"
#include "monitor/monitor.h"

static GHashTable *backend_options(TPMBackend *be)
{
    GHashTable *kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    tpm_backend_get_options(be, kv);
    return kv;
}

/* Keys sorted, so that output is stable. */
static GList *sorted_keys(GHashTable *kv)
{
    return g_list_sort(g_hash_table_get_keys(kv), (GCompareFunc)strcmp);
}

static void add_tpm_info(const TPMFrontendInfo *info, void *opaque)
{
    JsonBuilder *b = opaque;
    g_autoptr(GHashTable) kv = backend_options(info->be);
    GList *keys = sorted_keys(kv);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "model");
    json_builder_add_string_value(b, info->model);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, info->be->id);
    json_builder_set_member_name(b, "options");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, info->be->klass->type);
    json_builder_set_member_name(b, "data");
    json_builder_begin_object(b);
    for (GList *k = keys; k; k = k->next) {
        json_builder_set_member_name(b, k->data);
        json_builder_add_string_value(b, g_hash_table_lookup(kv, k->data));
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
    json_builder_end_object(b);
    g_list_free(keys);
}

static JsonNode *qmp_query_tpm(JsonObject *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_array(b);
    tpm_frontend_foreach(add_tpm_info, b);
    json_builder_end_array(b);
    return json_builder_get_root(b);
}

static JsonNode *qmp_query_tpm_models(JsonObject *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_array(b);
    for (const char *const *m = tpm_frontend_models(); *m; m++) {
        json_builder_add_string_value(b, *m);
    }
    json_builder_end_array(b);
    return json_builder_get_root(b);
}

static void add_type(const TPMBackendClass *k, void *opaque)
{
    json_builder_add_string_value(opaque, k->type);
}

static JsonNode *qmp_query_tpm_types(JsonObject *args, GError **errp)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_array(b);
    tpm_backend_class_foreach(add_type, b);
    json_builder_end_array(b);
    return json_builder_get_root(b);
}

typedef struct HmpTpm {
    GString *out;
    unsigned n;
} HmpTpm;

static void print_tpm_info(const TPMFrontendInfo *info, void *opaque)
{
    HmpTpm *h = opaque;
    g_autoptr(GHashTable) kv = backend_options(info->be);
    GList *keys = sorted_keys(kv);

    g_string_append_printf(h->out, " tpm%u: model=%s\n", h->n++, info->model);
    g_string_append_printf(h->out, "  \\ %s: type=%s", info->be->id,
                           info->be->klass->type);
    for (GList *k = keys; k; k = k->next) {
        g_string_append_printf(h->out, ",%s=%s", (const char *)k->data,
                               (const char *)g_hash_table_lookup(kv, k->data));
    }
    g_string_append_c(h->out, '\n');
    if (info->be->had_startup_error) {
        g_string_append_printf(h->out, "    startup failed: %s\n",
                               info->be->startup_error ? info->be->startup_error : "?");
    }
    g_list_free(keys);
}

static bool hmp_info_tpm(const char *args, GString *out, GError **errp)
{
    HmpTpm h = {.out = out};

    g_string_append(out, "TPM device:\n");
    tpm_frontend_foreach(print_tpm_info, &h);
    return true;
}

static void __attribute__((constructor)) tpm_cmds_register(void)
{
    qmp_register_command_args("query-tpm", qmp_query_tpm, 0, "");
    qmp_register_command_args("query-tpm-models", qmp_query_tpm_models, 0, "");
    qmp_register_command_args("query-tpm-types", qmp_query_tpm_types, 0, "");
    hmp_register_info("tpm", "show the TPM device", hmp_info_tpm);
}
