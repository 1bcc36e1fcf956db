/*
 * TPM command builders and response readers shared by the built-in TPM's
 * unit tests, qtests and fuzz seeds. Byte layouts follow TPM 2.0 Part 3
 * (commands) / Part 2 (structures) and TPM 1.2 Part 3; expected values are
 * computed independently with nettle.
 */
#ifndef TESTS_TPM_BUILTIN_CMDS_H
#define TESTS_TPM_BUILTIN_CMDS_H

#include <stdint.h>
#include <string.h>
#include <glib.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002
#define TPM2_CC_NV_DEFINE_SPACE 0x12a
#define TPM2_CC_NV_WRITE 0x137
#define TPM2_CC_SELF_TEST 0x143
#define TPM2_CC_STARTUP 0x144
#define TPM2_CC_SHUTDOWN 0x145
#define TPM2_CC_NV_READ 0x14e
#define TPM2_CC_GET_CAPABILITY 0x17a
#define TPM2_CC_GET_RANDOM 0x17b
#define TPM2_CC_PCR_READ 0x17e
#define TPM2_CC_PCR_EXTEND 0x182
#define TPM2_RH_OWNER 0x40000001
#define TPM2_RS_PW 0x40000009
#define TPM2_ALG_SHA256 0x000b
#define TPM2_SU_CLEAR 0
#define TPM2_SU_STATE 1
#define TPM2_RC_SUCCESS 0
#define TPM2_RC_INITIALIZE 0x100
#define TPM2_RC_LOCALITY 0x907
#define TPM2_RC_NV_DEFINED 0x14c
/* TPMA_NV: OWNERWRITE | OWNERREAD | NO_DA */
#define TEST_NV_ATTRS 0x02020002u
#define TEST_NV_INDEX 0x01500001u

#define TPM12_TAG_RQU_COMMAND 0x00c1
#define TPM12_ORD_EXTEND 0x14
#define TPM12_ORD_PCR_READ 0x15
#define TPM12_ORD_GET_CAPABILITY 0x65
#define TPM12_ORD_STARTUP 0x99
#define TPM12_ST_CLEAR 1
#define TPM12_CAP_PROPERTY 5
#define TPM12_CAP_PROP_PCR 0x101

static inline void tc_u8(GByteArray *b, uint8_t v)
{
    g_byte_array_append(b, &v, 1);
}

static inline void tc_u16(GByteArray *b, uint16_t v)
{
    uint8_t p[2] = {v >> 8, v & 0xff};
    g_byte_array_append(b, p, 2);
}

static inline void tc_u32(GByteArray *b, uint32_t v)
{
    uint8_t p[4] = {v >> 24, v >> 16, v >> 8, v};
    g_byte_array_append(b, p, 4);
}

static inline uint16_t tc_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t tc_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline GByteArray *tc_begin(uint16_t tag, uint32_t cc)
{
    GByteArray *b = g_byte_array_new();
    tc_u16(b, tag);
    tc_u32(b, 0); /* size, patched by tc_end */
    tc_u32(b, cc);
    return b;
}

static inline GByteArray *tc_end(GByteArray *b)
{
    uint32_t n = b->len;
    b->data[2] = n >> 24;
    b->data[3] = n >> 16;
    b->data[4] = n >> 8;
    b->data[5] = n;
    return b;
}

/* Password session with an empty password (TPM 2.0 Part 1 §19.8.4). */
static inline void tc_pw_auth(GByteArray *b)
{
    tc_u32(b, 9);
    tc_u32(b, TPM2_RS_PW);
    tc_u16(b, 0); /* nonce */
    tc_u8(b, 0);  /* session attributes */
    tc_u16(b, 0); /* hmac */
}

static inline GByteArray *tpm2_cmd_startup(uint16_t su)
{
    GByteArray *b = tc_begin(TPM2_ST_NO_SESSIONS, TPM2_CC_STARTUP);
    tc_u16(b, su);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_shutdown(uint16_t su)
{
    GByteArray *b = tc_begin(TPM2_ST_NO_SESSIONS, TPM2_CC_SHUTDOWN);
    tc_u16(b, su);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_self_test(void)
{
    GByteArray *b = tc_begin(TPM2_ST_NO_SESSIONS, TPM2_CC_SELF_TEST);
    tc_u8(b, 1); /* fullTest */
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_get_random(uint16_t n)
{
    GByteArray *b = tc_begin(TPM2_ST_NO_SESSIONS, TPM2_CC_GET_RANDOM);
    tc_u16(b, n);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_pcr_extend(uint32_t pcr, const uint8_t digest[32])
{
    GByteArray *b = tc_begin(TPM2_ST_SESSIONS, TPM2_CC_PCR_EXTEND);
    tc_u32(b, pcr);
    tc_pw_auth(b);
    tc_u32(b, 1); /* TPML_DIGEST_VALUES.count */
    tc_u16(b, TPM2_ALG_SHA256);
    g_byte_array_append(b, digest, 32);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_pcr_read(uint32_t pcr)
{
    GByteArray *b = tc_begin(TPM2_ST_NO_SESSIONS, TPM2_CC_PCR_READ);
    tc_u32(b, 1); /* TPML_PCR_SELECTION.count */
    tc_u16(b, TPM2_ALG_SHA256);
    tc_u8(b, 3);
    tc_u8(b, pcr < 8 ? 1u << pcr : 0);
    tc_u8(b, pcr >= 8 && pcr < 16 ? 1u << (pcr - 8) : 0);
    tc_u8(b, pcr >= 16 && pcr < 24 ? 1u << (pcr - 16) : 0);
    return tc_end(b);
}

/* The SHA-256 digest in a PCR_Read response of one PCR, or NULL. */
static inline const uint8_t *tpm2_rsp_pcr_read_digest(const uint8_t *rsp, uint32_t len)
{
    /* header 10, updateCounter 4, selection 10, digest count 4, size 2 */
    if (len < 62 || tc_get32(rsp + 6) != 0 || tc_get32(rsp + 24) != 1 ||
        tc_get16(rsp + 28) != 32) {
        return NULL;
    }
    return rsp + 30;
}

static inline GByteArray *tpm2_cmd_nv_define(uint32_t index, uint16_t size)
{
    GByteArray *b = tc_begin(TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINE_SPACE);
    tc_u32(b, TPM2_RH_OWNER);
    tc_pw_auth(b);
    tc_u16(b, 0);  /* auth */
    tc_u16(b, 14); /* TPM2B_NV_PUBLIC size */
    tc_u32(b, index);
    tc_u16(b, TPM2_ALG_SHA256);
    tc_u32(b, TEST_NV_ATTRS);
    tc_u16(b, 0); /* authPolicy */
    tc_u16(b, size);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_nv_write(uint32_t index, const uint8_t *data,
                                            uint16_t len, uint16_t offset)
{
    GByteArray *b = tc_begin(TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE);
    tc_u32(b, TPM2_RH_OWNER);
    tc_u32(b, index);
    tc_pw_auth(b);
    tc_u16(b, len);
    g_byte_array_append(b, data, len);
    tc_u16(b, offset);
    return tc_end(b);
}

static inline GByteArray *tpm2_cmd_nv_read(uint32_t index, uint16_t len, uint16_t offset)
{
    GByteArray *b = tc_begin(TPM2_ST_SESSIONS, TPM2_CC_NV_READ);
    tc_u32(b, TPM2_RH_OWNER);
    tc_u32(b, index);
    tc_pw_auth(b);
    tc_u16(b, len);
    tc_u16(b, offset);
    return tc_end(b);
}

/* Data of an NV_Read response, or NULL. */
static inline const uint8_t *tpm2_rsp_nv_read_data(const uint8_t *rsp, uint32_t len,
                                                   uint16_t *out_len)
{
    /* header 10, parameterSize 4, TPM2B size 2 */
    if (len < 16 || tc_get32(rsp + 6) != 0) {
        return NULL;
    }
    *out_len = tc_get16(rsp + 14);
    if (16u + *out_len > len) {
        return NULL;
    }
    return rsp + 16;
}

/* PCR after extending `old` by `in` (SHA-256 bank). */
static inline void tpm2_pcr_extend_expect(uint8_t pcr[32], const uint8_t in[32])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, 32, pcr);
    sha256_update(&c, 32, in);
    sha256_digest(&c, 32, pcr);
}

static inline GByteArray *tpm12_cmd_startup(uint16_t type)
{
    GByteArray *b = tc_begin(TPM12_TAG_RQU_COMMAND, TPM12_ORD_STARTUP);
    tc_u16(b, type);
    return tc_end(b);
}

static inline GByteArray *tpm12_cmd_get_capability_pcrs(void)
{
    GByteArray *b = tc_begin(TPM12_TAG_RQU_COMMAND, TPM12_ORD_GET_CAPABILITY);
    tc_u32(b, TPM12_CAP_PROPERTY);
    tc_u32(b, 4);
    tc_u32(b, TPM12_CAP_PROP_PCR);
    return tc_end(b);
}

static inline GByteArray *tpm12_cmd_extend(uint32_t pcr, const uint8_t digest[20])
{
    GByteArray *b = tc_begin(TPM12_TAG_RQU_COMMAND, TPM12_ORD_EXTEND);
    tc_u32(b, pcr);
    g_byte_array_append(b, digest, 20);
    return tc_end(b);
}

static inline GByteArray *tpm12_cmd_pcr_read(uint32_t pcr)
{
    GByteArray *b = tc_begin(TPM12_TAG_RQU_COMMAND, TPM12_ORD_PCR_READ);
    tc_u32(b, pcr);
    return tc_end(b);
}

static inline void tpm12_pcr_extend_expect(uint8_t pcr[20], const uint8_t in[20])
{
    struct sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, 20, pcr);
    sha1_update(&c, 20, in);
    sha1_digest(&c, 20, pcr);
}

static inline uint32_t tpm_rsp_code(const uint8_t *rsp, uint32_t len)
{
    return len >= 10 ? tc_get32(rsp + 6) : 0xffffffffu;
}

#endif
