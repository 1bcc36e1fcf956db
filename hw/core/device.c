/*
 * Device registry and typed properties. See include/hw/core/device.h.
 */
#include "hw/core/device.h"

#include <stdio.h>
#include <string.h>

#include "hw/core/machine.h"
#include "util/error.h"

static GHashTable *device_classes; /* name -> const DeviceClass* */
static GPtrArray *devices;         /* DeviceState*, creation order */

void device_class_register(const DeviceClass *dc)
{
    if (!device_classes) {
        device_classes = g_hash_table_new(g_str_hash, g_str_equal);
    }
    if (g_hash_table_contains(device_classes, dc->name)) {
        g_error("device type '%s' registered twice", dc->name);
    }
    g_hash_table_insert(device_classes, (gpointer)dc->name, (gpointer)dc);
}

const DeviceClass *device_class_find(const char *name)
{
    return device_classes && name ? g_hash_table_lookup(device_classes, name) : NULL;
}

static const char *prop_type_name(PropertyType t)
{
    switch (t) {
    case PROP_STRING:
        return "str";
    case PROP_BOOL:
        return "bool";
    case PROP_UINT8:
        return "uint8";
    case PROP_UINT32:
        return "uint32";
    case PROP_UINT64:
        return "uint64";
    case PROP_SIZE:
        return "size";
    }
    return "?";
}

static const Property *prop_find(const DeviceClass *dc, const char *name)
{
    for (const Property *p = dc->props; p && p->name; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Parse `value` for property p and store it into the instance. */
static bool prop_set(DeviceState *dev, const Property *p, const char *value,
                     GError **errp)
{
    uint8_t *field = (uint8_t *)dev + p->offset;
    g_autoptr(KeyVal) kv = NULL;
    uint64_t u;

    if (p->type == PROP_STRING) {
        char **s = (char **)field;
        g_free(*s);
        *s = g_strdup(value);
        return true;
    }
    /* reuse the option parser's number/bool/size rules and messages */
    kv = keyval_new();
    keyval_set(kv, p->name, value);
    switch (p->type) {
    case PROP_BOOL:
        return keyval_get_bool(kv, p->name, false, (bool *)field, errp);
    case PROP_SIZE:
        return keyval_get_size(kv, p->name, 0, (uint64_t *)field, errp);
    case PROP_UINT64:
        return keyval_get_uint(kv, p->name, 0, (uint64_t *)field, errp);
    case PROP_UINT8:
    case PROP_UINT32:
        if (!keyval_get_uint(kv, p->name, 0, &u, errp)) {
            return false;
        }
        if (u > (p->type == PROP_UINT8 ? UINT8_MAX : UINT32_MAX)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Parameter '%s' expects a value up to %u, not '%s'", p->name,
                        p->type == PROP_UINT8 ? UINT8_MAX : UINT32_MAX, value);
            return false;
        }
        if (p->type == PROP_UINT8) {
            *(uint8_t *)field = (uint8_t)u;
        } else {
            *(uint32_t *)field = (uint32_t)u;
        }
        return true;
    case PROP_STRING:
        break;
    }
    return true;
}

DeviceState *device_new(const char *type, const char *id)
{
    const DeviceClass *dc = device_class_find(type);
    DeviceState *dev;

    if (!dc) {
        return NULL;
    }
    g_assert(dc->instance_size >= sizeof(DeviceState));
    dev = g_malloc0(dc->instance_size);
    dev->klass = dc;
    dev->id = g_strdup(id);
    for (const Property *p = dc->props; p && p->name; p++) {
        if (p->defval && !prop_set(dev, p, p->defval, NULL)) {
            g_error("device type '%s': bad default '%s' for property '%s'", dc->name,
                    p->defval, p->name);
        }
    }
    return dev;
}

bool device_set_prop(DeviceState *dev, const char *name, const char *value, GError **errp)
{
    const Property *p = prop_find(dev->klass, name);

    if (!p) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Invalid parameter '%s'",
                    name);
        return false;
    }
    if (dev->realized) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Property '%s' cannot be changed after the device is realized", name);
        return false;
    }
    return prop_set(dev, p, value, errp);
}

static void device_free(DeviceState *dev)
{
    for (const Property *p = dev->klass->props; p && p->name; p++) {
        if (p->type == PROP_STRING) {
            g_free(*(char **)((uint8_t *)dev + p->offset));
        }
    }
    g_free(dev->id);
    g_free(dev);
}

static guint device_count_type(const DeviceClass *dc)
{
    guint n = 0;

    for (guint i = 0; devices && i < devices->len; i++) {
        DeviceState *d = g_ptr_array_index(devices, i);
        n += d->klass == dc;
    }
    return n;
}

/* Lowest instance number not used by a realized device of this type. */
static int device_free_instance(const DeviceClass *dc)
{
    for (int inst = 0;; inst++) {
        bool used = false;
        for (guint i = 0; devices && i < devices->len && !used; i++) {
            DeviceState *d = g_ptr_array_index(devices, i);
            used = d->klass == dc && d->instance == inst;
        }
        if (!used) {
            return inst;
        }
    }
}

bool device_realize(DeviceState *dev, GError **errp)
{
    const DeviceClass *dc = dev->klass;
    if (dev->realized) {
        return true;
    }
    if (dev->id && device_find(dev->id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Duplicate device ID '%s'; pick another id=", dev->id);
        return false;
    }
    if (dc->singleton && device_count_type(dc) > 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Only one device of type '%s' is supported per machine", dc->name);
        return false;
    }
    if (dc->machines) {
        const char *mname = current_machine ? current_machine->klass->name : "none";
        bool ok = false;
        for (const char *const *m = dc->machines; *m; m++) {
            ok |= strcmp(*m, mname) == 0;
        }
        if (!ok) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Device '%s' is not supported on machine '%s'", dc->name, mname);
            return false;
        }
    }
    if (dc->realize && !dc->realize(dev, errp)) {
        return false;
    }
    dev->instance = device_free_instance(dc);
    dev->realized = true;
    if (!devices) {
        devices = g_ptr_array_new();
    }
    g_ptr_array_add(devices, dev);
    if (dc->vmsd) {
        vmstate_register(dc->vmsd->name ? dc->vmsd->name : dc->name, dev->instance,
                         dc->vmsd, dev);
    }
    return true;
}

static void device_print_props(const DeviceClass *dc)
{
    printf("%s options:\n", dc->name);
    for (const Property *p = dc->props; p && p->name; p++) {
        g_autofree char *lhs =
            g_strdup_printf("%s=<%s>", p->name, prop_type_name(p->type));
        printf("  %-24s -%s%s", lhs, p->desc ? " " : "", p->desc ? p->desc : "");
        if (p->defval) {
            printf(" (default: %s)", p->defval);
        }
        printf("\n");
    }
    if (!dc->props || !dc->props->name) {
        printf("There are no options for %s.\n", dc->name);
    }
}

DeviceState *device_create_from_string(const char *optstr, bool *help_printed,
                                       GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(optstr, "driver", errp);
    const char *driver, *id;
    const DeviceClass *dc;
    DeviceState *dev;

    if (help_printed) {
        *help_printed = false;
    }
    if (!kv) {
        return NULL;
    }
    driver = keyval_get(kv, "driver");
    if (keyval_wants_help(kv)) {
        if (!driver || strcmp(driver, "help") == 0 || strcmp(driver, "?") == 0) {
            device_list_help();
        } else if ((dc = device_class_find(driver))) {
            device_print_props(dc);
        } else {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "'%s' is not a valid device model name (see -device help)",
                        driver);
            return NULL;
        }
        if (help_printed) {
            *help_printed = true;
        }
        return NULL;
    }
    if (!driver) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter 'driver' is missing (see -device help)");
        return NULL;
    }
    dc = device_class_find(driver);
    if (!dc) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "'%s' is not a valid device model name (see -device help)", driver);
        return NULL;
    }
    if (!dc->user_creatable) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Device '%s' can not be created with -device", driver);
        return NULL;
    }
    id = keyval_get(kv, "id");
    dev = device_new(driver, id);
    for (const char *const *k = keyval_keys(kv); *k; k++) {
        const char *key = *k;
        if (!strcmp(key, "driver") || !strcmp(key, "id") || !prop_find(dc, key)) {
            continue;
        }
        if (!device_set_prop(dev, key, keyval_get(kv, key), errp)) {
            device_free(dev);
            return NULL;
        }
    }
    if (!keyval_check_unused(kv, NULL, errp) || !device_realize(dev, errp)) {
        device_free(dev);
        return NULL;
    }
    return dev;
}

DeviceState *device_find(const char *id)
{
    for (guint i = 0; id && devices && i < devices->len; i++) {
        DeviceState *d = g_ptr_array_index(devices, i);
        if (d->id && strcmp(d->id, id) == 0) {
            return d;
        }
    }
    return NULL;
}

void device_foreach(void (*fn)(DeviceState *dev, void *opaque), void *opaque)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        fn(g_ptr_array_index(devices, i), opaque);
    }
}

void devices_reset_all(void)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        DeviceState *d = g_ptr_array_index(devices, i);
        if (d->klass->reset) {
            d->klass->reset(d);
        }
    }
}

void device_destroy(DeviceState *dev)
{
    if (!dev) {
        return;
    }
    if (dev->realized) {
        if (dev->klass->vmsd) {
            vmstate_unregister(dev->klass->vmsd, dev);
        }
        if (dev->klass->unrealize) {
            dev->klass->unrealize(dev);
        }
        dev->realized = false;
        g_ptr_array_remove(devices, dev);
    }
    device_free(dev);
}

void devices_destroy_all(void)
{
    while (devices && devices->len) {
        device_destroy(g_ptr_array_index(devices, devices->len - 1));
    }
}

static gint class_cmp(gconstpointer a, gconstpointer b)
{
    const DeviceClass *x = *(const DeviceClass *const *)a;
    const DeviceClass *y = *(const DeviceClass *const *)b;

    return strcmp(x->name, y->name);
}

void device_list_help(void)
{
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;

    if (device_classes) {
        g_hash_table_iter_init(&it, device_classes);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            if (((const DeviceClass *)v)->user_creatable) {
                g_ptr_array_add(list, v);
            }
        }
    }
    g_ptr_array_sort(list, class_cmp);
    printf("Available devices:\n");
    for (guint i = 0; i < list->len; i++) {
        const DeviceClass *dc = g_ptr_array_index(list, i);
        printf("name \"%s\"%s%s%s\n", dc->name, dc->desc ? ", desc \"" : "",
               dc->desc ? dc->desc : "", dc->desc ? "\"" : "");
    }
    if (list->len == 0) {
        printf("(none)\n");
    }
}
