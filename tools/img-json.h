/*
 * A small JSON tree for tpmvm-img's --output=json and the "Format specific
 * information" block. Objects list their members in the order QEMU's QDict
 * iterates (bucket of the tdb hash of the key, newest first in a bucket), so
 * the text matches qemu-img's byte for byte.
 */
#ifndef TOOLS_IMG_JSON_H
#define TOOLS_IMG_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct JVal JVal;

JVal *jv_obj(void);
JVal *jv_arr(void);
JVal *jv_str(const char *s);
JVal *jv_int(int64_t v);
JVal *jv_bool(bool v);
/* Adds and takes ownership of v. */
void jv_obj_add(JVal *obj, const char *key, JVal *v);
void jv_arr_add(JVal *arr, JVal *v);
void jv_free(JVal *v);
/* Pretty JSON as qemu-img prints it (4-space indent, no final newline). */
void jv_print_json(GString *out, const JVal *v);
/* qemu-img's human dump of an object: "key name: value", nested by 4. */
void jv_print_human(GString *out, const JVal *obj, int indent);

#endif
