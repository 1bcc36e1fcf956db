/*
 * Big-endian loads and stores at unaligned byte pointers: the byte order of
 * qcow2, LUKS, the TPM command stream, tpmvm's vmstate and NVRAM formats.
 */
#ifndef UTIL_BYTEORDER_H
#define UTIL_BYTEORDER_H

#include <stdint.h>
#include <glib.h>

static inline uint16_t be16_at(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_at(const uint8_t *p)
{
    return (uint64_t)be32_at(p) << 32 | be32_at(p + 4);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* The `bytes` (1..8) low-order bytes of a field of that width. */
static inline uint64_t be_at(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    }
}

/* Append v as a `bytes`-wide big-endian field. */
static inline void append_be(GByteArray *out, uint64_t v, unsigned bytes)
{
    uint8_t b[8];

    put_be(b, v, bytes);
    g_byte_array_append(out, b, bytes);
}

#endif
