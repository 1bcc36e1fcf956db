/*
 * Device state save/load as versioned, named sections.
 *
 * A stream is: magic "TPVM", stream version (u32), then sections
 * {name (u8 len + bytes), instance id (u32), version (u32), length (u64),
 * payload}, then an end marker. All integers big-endian. The format is
 * documented in docs/vmstate.md.
 *
 * Loading is all-or-nothing: every section is parsed and checked (known name,
 * version within [minimum_version_id, version_id], exact length, field
 * bounds) before any state is changed; an unknown, truncated, duplicate or
 * newer section fails with an error naming it.
 *
 * Sections describe their fields declaratively (VMStateField arrays); state
 * that is not a fixed layout (libtpms blobs, RAM) uses the save/load hooks.
 */
#ifndef HW_CORE_VMSTATE_H
#define HW_CORE_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef enum {
    VMS_END = 0,
    VMS_BOOL,
    VMS_U8,
    VMS_U16,
    VMS_U32,
    VMS_U64,
    VMS_BUFFER, /* `size` bytes at offset */
    VMS_STRUCT, /* nested description `vmsd` at offset, `num` elements of `size` bytes */
} VMStateFieldType;

typedef struct VMStateDescription VMStateDescription;

typedef struct VMStateField {
    const char *name;
    VMStateFieldType type;
    size_t offset;
    size_t size;                    /* VMS_BUFFER: bytes; VMS_STRUCT: element size */
    unsigned num;                   /* array length, 0 or 1 = scalar */
    const VMStateDescription *vmsd; /* VMS_STRUCT */
    int version_id;                 /* field present since this section version */
} VMStateField;

/* Writer/reader over a byte stream. */
typedef struct VMStateStream VMStateStream;

struct VMStateDescription {
    const char *name;
    int version_id;
    int minimum_version_id;
    const VMStateField *fields; /* VMS_END-terminated, may be NULL */
    /* Before saving (e.g. wait for an in-flight TPM command). */
    bool (*pre_save)(void *opaque, GError **errp);
    /* Extra payload after the fields. */
    bool (*save)(void *opaque, GByteArray *out, GError **errp);
    /* Validate extra payload without changing state (phase 1). */
    bool (*check)(void *opaque, const uint8_t *buf, size_t len, int version_id,
                  GError **errp);
    /* Apply extra payload (phase 2, after every section passed check). */
    bool (*load)(void *opaque, const uint8_t *buf, size_t len, int version_id,
                 GError **errp);
    /* After all sections are applied. */
    bool (*post_load)(void *opaque, int version_id, GError **errp);
};

/* Register a section; (name, instance) must be unique. */
void vmstate_register(const char *name, int instance, const VMStateDescription *vmsd,
                      void *opaque);
void vmstate_unregister(const VMStateDescription *vmsd, void *opaque);

/* Save every registered section into `out`. */
bool vmstate_save_all(GByteArray *out, GError **errp);
/* Load a complete stream; on error nothing was changed. */
bool vmstate_load_all(const uint8_t *buf, size_t len, GError **errp);
/* Only what vmstate_load_all checks before it changes anything. */
bool vmstate_check_all(const uint8_t *buf, size_t len, GError **errp);

/* Single section helpers (for tests and for nested use). */
bool vmstate_save_one(const VMStateDescription *vmsd, void *opaque, GByteArray *out,
                      GError **errp);
bool vmstate_load_one(const VMStateDescription *vmsd, void *opaque, const uint8_t *buf,
                      size_t len, int version_id, GError **errp);

#endif
