/*
 * A LUKS area in memory for tests: a growable byte array behind LuksIO.
 * Reads past the end fail like reads past the end of a qcow2 LUKS area.
 */
#ifndef TESTS_LUKS_MEM_IO_H
#define TESTS_LUKS_MEM_IO_H

#include <string.h>

#include "crypto/luks.h"
#include "util/error.h"

typedef struct MemArea {
    GByteArray *bytes;
    unsigned writes;
} MemArea;

static inline bool mem_area_read(void *opaque, uint64_t offset, void *buf, size_t len,
                                 GError **errp)
{
    MemArea *a = opaque;

    if (offset > a->bytes->len || len > a->bytes->len - offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "read of %zu bytes at %" G_GUINT64_FORMAT " is outside the area", len,
                    offset);
        return false;
    }
    memcpy(buf, a->bytes->data + offset, len);
    return true;
}

static inline bool mem_area_write(void *opaque, uint64_t offset, const void *buf,
                                  size_t len, GError **errp)
{
    MemArea *a = opaque;

    g_assert_cmpuint(offset + len, <=, 64 * 1024 * 1024);
    if (offset + len > a->bytes->len) {
        guint old = a->bytes->len;

        g_byte_array_set_size(a->bytes, (guint)(offset + len));
        memset(a->bytes->data + old, 0, a->bytes->len - old);
    }
    memcpy(a->bytes->data + offset, buf, len);
    a->writes++;
    return true;
}

static inline void mem_area_init(MemArea *a, LuksIO *io)
{
    a->bytes = g_byte_array_new();
    a->writes = 0;
    io->read = mem_area_read;
    io->write = mem_area_write;
    io->opaque = a;
}

static inline void mem_area_clear(MemArea *a)
{
    g_byte_array_unref(a->bytes);
}

#endif
