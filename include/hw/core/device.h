/*
 * Device registry: a device type is a DeviceClass with a name, typed
 * properties, realize/reset hooks and a vmstate description. `-device NAME,...`
 * creates an instance; `-device help` and `-device NAME,help` list them.
 *
 * An instance struct starts with DeviceState:
 *     typedef struct TPMTISISA { DeviceState parent; ... } TPMTISISA;
 * Properties are stored at `offset` inside that struct.
 */
#ifndef HW_CORE_DEVICE_H
#define HW_CORE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/vmstate.h"
#include "util/keyval.h"

typedef enum {
    PROP_STRING, /* char* (owned by the device) */
    PROP_BOOL,   /* bool */
    PROP_UINT8,
    PROP_UINT32,
    PROP_UINT64,
    PROP_SIZE, /* uint64_t with K/M/G suffixes */
} PropertyType;

typedef struct Property {
    const char *name;
    PropertyType type;
    size_t offset;
    const char *defval; /* textual default, NULL = none (string NULL / 0) */
    const char *desc;
} Property;

typedef struct DeviceState DeviceState;

typedef struct DeviceClass {
    const char *name;
    const char *desc;
    size_t instance_size;
    const Property *props; /* terminated by { NULL } */
    bool (*realize)(DeviceState *dev, GError **errp);
    void (*reset)(DeviceState *dev);
    void (*unrealize)(DeviceState *dev);
    const VMStateDescription *vmsd;
    bool user_creatable;
    /* at most one instance per machine */
    bool singleton;
    /* machines it may be plugged into ("pc"), NULL = any */
    const char *const *machines;
} DeviceClass;

struct DeviceState {
    const DeviceClass *klass;
    char *id;
    bool realized;
    /* vmstate instance number among devices of the same type (set at realize) */
    int instance;
};

void device_class_register(const DeviceClass *dc);
#define DEVICE_TYPE_REGISTER(dc)                                                         \
    static void __attribute__((constructor)) register_##dc(void)                         \
    {                                                                                    \
        device_class_register(&dc);                                                      \
    }

const DeviceClass *device_class_find(const char *name);

/* Create, set properties and realize from "-device" options; errors name the
 * device and the property. Prints help and returns NULL with no error when
 * help was asked for (*help_printed = true). */
DeviceState *device_create_from_string(const char *optstr, bool *help_printed,
                                       GError **errp);
/* Create without realizing (board code). */
DeviceState *device_new(const char *type, const char *id);
bool device_set_prop(DeviceState *dev, const char *name, const char *value,
                     GError **errp);
bool device_realize(DeviceState *dev, GError **errp);

DeviceState *device_find(const char *id);
/* Calls fn for every realized device in creation order. */
void device_foreach(void (*fn)(DeviceState *dev, void *opaque), void *opaque);
void devices_reset_all(void);
/* Unrealize (if realized), drop the vmstate section and free. */
void device_destroy(DeviceState *dev);
/* Destroy every realized device, newest first (at exit). */
void devices_destroy_all(void);
void device_list_help(void);

#endif
