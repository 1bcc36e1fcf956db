/*
 * Versioned device state sections. See include/hw/core/vmstate.h and
 * docs/vmstate.md for the stream format.
 *
 * Loading runs in two phases: phase 1 parses every section and validates it
 * against the registered description (name, instance, version, lengths,
 * field values, the section's own check hook) without touching any state;
 * phase 2 applies them. A stream that fails phase 1 changes nothing.
 */
#include "hw/core/vmstate.h"

#include <string.h>

#include "util/byteorder.h"
#include "util/error.h"

#define VMSTATE_MAGIC "TPVM"
#define VMSTATE_STREAM_VERSION 1
#define VMSTATE_NAME_MAX 255

typedef struct VMStateEntry {
    char *name;
    int instance;
    const VMStateDescription *vmsd;
    void *opaque;
} VMStateEntry;

static GPtrArray *entries; /* VMStateEntry*, registration order = save order */

static void entry_free(gpointer p)
{
    VMStateEntry *e = p;

    g_free(e->name);
    g_free(e);
}

static VMStateEntry *entry_find(const char *name, size_t name_len, uint32_t instance)
{
    for (guint i = 0; entries && i < entries->len; i++) {
        VMStateEntry *e = g_ptr_array_index(entries, i);
        if (strlen(e->name) == name_len && memcmp(e->name, name, name_len) == 0 &&
            (uint32_t)e->instance == instance) {
            return e;
        }
    }
    return NULL;
}

void vmstate_register(const char *name, int instance, const VMStateDescription *vmsd,
                      void *opaque)
{
    VMStateEntry *e;

    if (!name || !*name || strlen(name) > VMSTATE_NAME_MAX || instance < 0) {
        g_error("vmstate: invalid section name or instance for '%s'", name ? name : "");
    }
    if (entry_find(name, strlen(name), (uint32_t)instance)) {
        g_error("vmstate: section '%s' instance %d registered twice", name, instance);
    }
    if (!entries) {
        entries = g_ptr_array_new_with_free_func(entry_free);
    }
    e = g_new0(VMStateEntry, 1);
    e->name = g_strdup(name);
    e->instance = instance;
    e->vmsd = vmsd;
    e->opaque = opaque;
    g_ptr_array_add(entries, e);
}

void vmstate_unregister(const VMStateDescription *vmsd, void *opaque)
{
    for (guint i = 0; entries && i < entries->len;) {
        VMStateEntry *e = g_ptr_array_index(entries, i);
        if (e->vmsd == vmsd && e->opaque == opaque) {
            g_ptr_array_remove_index(entries, i);
        } else {
            i++;
        }
    }
}

/* ---- host-order field access ---- */

static void store_le_host(void *dst, uint64_t v, unsigned bytes)
{
    switch (bytes) {
    case 1:
        *(uint8_t *)dst = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)dst = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)dst = (uint32_t)v;
        break;
    default:
        *(uint64_t *)dst = v;
        break;
    }
}

static uint64_t load_host(const void *src, unsigned bytes)
{
    switch (bytes) {
    case 1:
        return *(const uint8_t *)src;
    case 2:
        return *(const uint16_t *)src;
    case 4:
        return *(const uint32_t *)src;
    default:
        return *(const uint64_t *)src;
    }
}

static unsigned scalar_bytes(VMStateFieldType t)
{
    switch (t) {
    case VMS_BOOL:
    case VMS_U8:
        return 1;
    case VMS_U16:
        return 2;
    case VMS_U32:
        return 4;
    case VMS_U64:
        return 8;
    default:
        return 0;
    }
}

/* ---- fields ---- */

static void fields_save(const VMStateField *fields, const void *opaque, int version,
                        GByteArray *out)
{
    for (const VMStateField *f = fields; f && f->type != VMS_END; f++) {
        unsigned n = f->num ? f->num : 1;

        if (f->version_id > version) {
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *base = (const uint8_t *)opaque + f->offset;
            switch (f->type) {
            case VMS_BOOL:
                append_be(out, *(const bool *)(base + i * sizeof(bool)) ? 1 : 0, 1);
                break;
            case VMS_U8:
            case VMS_U16:
            case VMS_U32:
            case VMS_U64: {
                unsigned b = scalar_bytes(f->type);
                append_be(out, load_host(base + (size_t)i * b, b), b);
                break;
            }
            case VMS_BUFFER:
                g_byte_array_append(out, base + (size_t)i * f->size, (guint)f->size);
                break;
            case VMS_STRUCT:
                fields_save(f->vmsd->fields, base + (size_t)i * f->size, version, out);
                break;
            case VMS_END:
                break;
            }
        }
    }
}

/*
 * Parse the encoded fields at buf[*pos..len). With apply == false only
 * validate (phase 1); with apply == true store into opaque (phase 2).
 */
static bool fields_load(const VMStateField *fields, void *opaque, const uint8_t *buf,
                        size_t len, size_t *pos, int version, bool apply,
                        const char *what, GError **errp)
{
    for (const VMStateField *f = fields; f && f->type != VMS_END; f++) {
        unsigned n = f->num ? f->num : 1;

        if (f->version_id > version) {
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            uint8_t *base = (uint8_t *)opaque + f->offset;
            size_t need = f->type == VMS_BUFFER ? f->size : scalar_bytes(f->type);

            if (f->type == VMS_STRUCT) {
                if (!fields_load(f->vmsd->fields, base + (size_t)i * f->size, buf, len,
                                 pos, version, apply, what, errp)) {
                    return false;
                }
                continue;
            }
            if (need > len - *pos) {
                g_set_error(
                    errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate: %s: field '%s' is truncated (needs %zu bytes, %zu left)",
                    what, f->name, need, len - *pos);
                return false;
            }
            switch (f->type) {
            case VMS_BOOL:
                if (buf[*pos] > 1) {
                    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                                "vmstate: %s: field '%s' has invalid boolean value %u",
                                what, f->name, buf[*pos]);
                    return false;
                }
                if (apply) {
                    *(bool *)(base + i * sizeof(bool)) = buf[*pos] != 0;
                }
                break;
            case VMS_U8:
            case VMS_U16:
            case VMS_U32:
            case VMS_U64:
                if (apply) {
                    store_le_host(base + (size_t)i * need,
                                  be_at(buf + *pos, (unsigned)need), (unsigned)need);
                }
                break;
            case VMS_BUFFER:
                if (apply) {
                    memcpy(base + (size_t)i * f->size, buf + *pos, f->size);
                }
                break;
            case VMS_STRUCT:
            case VMS_END:
                break;
            }
            *pos += need;
        }
    }
    return true;
}

/* ---- one section ---- */

static bool section_save(const VMStateDescription *vmsd, void *opaque, GByteArray *out,
                         GError **errp)
{
    if (vmsd->pre_save && !vmsd->pre_save(opaque, errp)) {
        return false;
    }
    fields_save(vmsd->fields, opaque, vmsd->version_id, out);
    if (vmsd->save && !vmsd->save(opaque, out, errp)) {
        return false;
    }
    return true;
}

/* Phase 1 for one payload; *fields_len receives the encoded size of the fields. */
static bool section_check(const VMStateDescription *vmsd, void *opaque,
                          const uint8_t *buf, size_t len, int version_id,
                          const char *what, size_t *fields_len, GError **errp)
{
    size_t pos = 0;

    if (version_id > vmsd->version_id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate: %s has version %d, newer than the supported %d "
                    "(saved by a newer tpmvm?)",
                    what, version_id, vmsd->version_id);
        return false;
    }
    if (version_id < vmsd->minimum_version_id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate: %s has version %d, older than the oldest supported %d",
                    what, version_id, vmsd->minimum_version_id);
        return false;
    }
    if (!fields_load(vmsd->fields, opaque, buf, len, &pos, version_id, false, what,
                     errp)) {
        return false;
    }
    *fields_len = pos;
    if (vmsd->check) {
        GError *err = NULL;
        if (!vmsd->check(opaque, buf + pos, len - pos, version_id, &err)) {
            g_propagate_prefixed_error(errp, err, "vmstate: %s: ", what);
            return false;
        }
    } else if (!vmsd->load && pos != len) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate: %s has %zu bytes of payload, expected %zu", what, len, pos);
        return false;
    }
    return true;
}

/* Phase 2 for one payload that passed section_check (post_load not included). */
static bool section_apply(const VMStateDescription *vmsd, void *opaque,
                          const uint8_t *buf, size_t len, int version_id,
                          size_t fields_len, const char *what, GError **errp)
{
    size_t pos = 0;

    fields_load(vmsd->fields, opaque, buf, len, &pos, version_id, true, what, NULL);
    if (vmsd->load) {
        GError *err = NULL;
        if (!vmsd->load(opaque, buf + fields_len, len - fields_len, version_id, &err)) {
            g_propagate_prefixed_error(errp, err, "vmstate: %s: ", what);
            return false;
        }
    }
    return true;
}

bool vmstate_save_one(const VMStateDescription *vmsd, void *opaque, GByteArray *out,
                      GError **errp)
{
    return section_save(vmsd, opaque, out, errp);
}

bool vmstate_load_one(const VMStateDescription *vmsd, void *opaque, const uint8_t *buf,
                      size_t len, int version_id, GError **errp)
{
    g_autofree char *what = g_strdup_printf("section '%s'", vmsd->name);
    size_t fields_len;

    if (!section_check(vmsd, opaque, buf, len, version_id, what, &fields_len, errp) ||
        !section_apply(vmsd, opaque, buf, len, version_id, fields_len, what, errp)) {
        return false;
    }
    if (vmsd->post_load) {
        GError *err = NULL;
        if (!vmsd->post_load(opaque, version_id, &err)) {
            g_propagate_prefixed_error(errp, err, "vmstate: %s: ", what);
            return false;
        }
    }
    return true;
}

/* ---- whole stream ---- */

bool vmstate_save_all(GByteArray *out, GError **errp)
{
    guint start = out->len;

    g_byte_array_append(out, (const guint8 *)VMSTATE_MAGIC, 4);
    append_be(out, VMSTATE_STREAM_VERSION, 4);
    for (guint i = 0; entries && i < entries->len; i++) {
        VMStateEntry *e = g_ptr_array_index(entries, i);
        size_t name_len = strlen(e->name);
        guint len_pos, payload_start;
        GError *err = NULL;

        append_be(out, name_len, 1);
        g_byte_array_append(out, (const guint8 *)e->name, (guint)name_len);
        append_be(out, (uint32_t)e->instance, 4);
        append_be(out, (uint32_t)e->vmsd->version_id, 4);
        len_pos = out->len;
        append_be(out, 0, 8);
        payload_start = out->len;
        if (!section_save(e->vmsd, e->opaque, out, &err)) {
            g_propagate_prefixed_error(
                errp, err, "vmstate: saving section '%s' instance %d: ", e->name,
                e->instance);
            g_byte_array_set_size(out, start);
            return false;
        }
        for (unsigned b = 0; b < 8; b++) {
            out->data[len_pos + b] =
                (uint8_t)((uint64_t)(out->len - payload_start) >> (8 * (7 - b)));
        }
    }
    append_be(out, 0, 1); /* end marker: a section name of length 0 */
    return true;
}

/*
 * A section name read from a stream, for messages: the stream comes from a
 * disk image, so bytes other than printable ASCII are shown as \xHH and never
 * reach a terminal or a QMP reply as they are.
 */
static char *vmstate_printable_name(const char *name, size_t len)
{
    GString *out = g_string_sized_new(len);

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            g_string_append_c(out, (char)c);
        } else {
            g_string_append_printf(out, "\\x%02x", c);
        }
    }
    return g_string_free(out, FALSE);
}

typedef struct ParsedSection {
    VMStateEntry *entry;
    const uint8_t *payload;
    size_t len;
    int version_id;
    size_t fields_len;
    char *what;
} ParsedSection;

static void parsed_section_clear(gpointer p)
{
    g_free(((ParsedSection *)p)->what);
}

/* Phase 1 (parse and check every section), then phase 2 if `apply`. */
static bool vmstate_load_stream(const uint8_t *buf, size_t len, bool apply, GError **errp)
{
    g_autoptr(GArray) parsed = g_array_new(FALSE, TRUE, sizeof(ParsedSection));
    g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    size_t pos = 8;
    uint32_t stream_version;

    g_array_set_clear_func(parsed, parsed_section_clear);
    if (len < 8 || memcmp(buf, VMSTATE_MAGIC, 4) != 0) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "vmstate: not a tpmvm state stream (bad magic or shorter than 8 bytes)");
        return false;
    }
    stream_version = (uint32_t)be_at(buf + 4, 4);
    if (stream_version != VMSTATE_STREAM_VERSION) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "vmstate: stream version %u is not supported (this tpmvm reads version "
            "%d)",
            stream_version, VMSTATE_STREAM_VERSION);
        return false;
    }

    /* phase 1: parse and check everything */
    for (;;) {
        ParsedSection ps = {0};
        size_t name_len;
        const char *name;
        uint32_t instance;
        uint64_t plen;

        if (pos >= len) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "vmstate: stream is truncated (no end marker after %u sections)",
                        parsed->len);
            return false;
        }
        name_len = buf[pos++];
        if (name_len == 0) {
            break;
        }
        /* name + instance + version + length */
        if (len - pos < name_len + 16) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "vmstate: stream is truncated inside a section header");
            return false;
        }
        name = (const char *)buf + pos;
        pos += name_len;
        instance = (uint32_t)be_at(buf + pos, 4);
        ps.version_id = (int)MIN(be_at(buf + pos + 4, 4), (uint64_t)G_MAXINT);
        plen = be_at(buf + pos + 8, 8);
        pos += 16;
        {
            g_autofree char *shown = vmstate_printable_name(name, name_len);
            ps.what = g_strdup_printf("section '%s' instance %u", shown, instance);
        }
        g_array_append_val(parsed, ps);
        ParsedSection *cur = &g_array_index(parsed, ParsedSection, parsed->len - 1);
        if (plen > len - pos) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "vmstate: %s is truncated (length %" G_GUINT64_FORMAT
                        ", %zu bytes left in the stream)",
                        cur->what, plen, len - pos);
            return false;
        }
        cur->payload = buf + pos;
        cur->len = (size_t)plen;
        pos += (size_t)plen;
        cur->entry = entry_find(name, name_len, instance);
        if (!cur->entry) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "vmstate: unknown %s (no such device in this VM configuration)",
                        cur->what);
            return false;
        }
        if (g_hash_table_contains(seen, cur->entry)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "vmstate: %s appears twice in the stream", cur->what);
            return false;
        }
        g_hash_table_add(seen, cur->entry);
        if (!section_check(cur->entry->vmsd, cur->entry->opaque, cur->payload, cur->len,
                           cur->version_id, cur->what, &cur->fields_len, errp)) {
            return false;
        }
    }
    if (pos != len) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate: %zu unexpected bytes after the end marker", len - pos);
        return false;
    }

    if (!apply) {
        return true;
    }

    /* phase 2: apply */
    for (guint i = 0; i < parsed->len; i++) {
        ParsedSection *ps = &g_array_index(parsed, ParsedSection, i);
        if (!section_apply(ps->entry->vmsd, ps->entry->opaque, ps->payload, ps->len,
                           ps->version_id, ps->fields_len, ps->what, errp)) {
            return false;
        }
    }
    for (guint i = 0; i < parsed->len; i++) {
        ParsedSection *ps = &g_array_index(parsed, ParsedSection, i);
        const VMStateDescription *vmsd = ps->entry->vmsd;
        GError *err = NULL;
        if (vmsd->post_load &&
            !vmsd->post_load(ps->entry->opaque, ps->version_id, &err)) {
            g_propagate_prefixed_error(errp, err, "vmstate: %s: ", ps->what);
            return false;
        }
    }
    return true;
}

bool vmstate_load_all(const uint8_t *buf, size_t len, GError **errp)
{
    return vmstate_load_stream(buf, len, true, errp);
}

bool vmstate_check_all(const uint8_t *buf, size_t len, GError **errp)
{
    return vmstate_load_stream(buf, len, false, errp);
}
