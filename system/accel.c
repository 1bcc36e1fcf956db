/*
 * Accelerator registry. See include/system/accel.h.
 */
#include "system/accel.h"

#include <stdio.h>
#include <string.h>

static GPtrArray *accel_classes;
static const AccelClass *accel_current;

void accel_class_register(const AccelClass *ac)
{
    if (!accel_classes) {
        accel_classes = g_ptr_array_new();
    }
    if (accel_class_find(ac->name)) {
        g_error("accelerator '%s' registered twice", ac->name);
    }
    g_ptr_array_add(accel_classes, (gpointer)ac);
}

const AccelClass *accel_class_find(const char *name)
{
    for (guint i = 0; name && accel_classes && i < accel_classes->len; i++) {
        const AccelClass *ac = g_ptr_array_index(accel_classes, i);
        if (strcmp(ac->name, name) == 0) {
            return ac;
        }
    }
    return NULL;
}

void accel_list_help(void)
{
    printf("Accelerators supported in this build:\n");
    for (guint i = 0; accel_classes && i < accel_classes->len; i++) {
        const AccelClass *ac = g_ptr_array_index(accel_classes, i);
        printf("%-8s %s\n", ac->name, ac->desc ? ac->desc : "");
    }
}

const AccelClass *current_accel(void)
{
    return accel_current;
}

void accel_set_current(const AccelClass *ac)
{
    accel_current = ac;
}
