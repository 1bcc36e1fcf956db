/*
 * TPM 2.0 commands the test guest sends (TPM 2.0 Library, Part 3), built and
 * parsed by hand with bounds checks on every response field. Every call
 * returns 0 on success, the TPM response code (> 0) if the TPM refused, or
 * -1 if the transport failed or the response was malformed (tpm->err says
 * why).
 */
#ifndef GUEST_TPM2_H
#define GUEST_TPM2_H

#include "tis.h"

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002
#define TPM2_SU_CLEAR 0x0000
#define TPM2_SU_STATE 0x0001
#define TPM2_RC_SUCCESS 0x000
#define TPM2_RC_INITIALIZE 0x100
#define TPM2_ALG_SHA256 0x000b

#define TPM2_CC_NV_UNDEFINE_SPACE 0x122
#define TPM2_CC_NV_DEFINE_SPACE 0x12a
#define TPM2_CC_NV_INCREMENT 0x134
#define TPM2_CC_NV_WRITE 0x137
#define TPM2_CC_STARTUP 0x144
#define TPM2_CC_NV_READ 0x14e
#define TPM2_CC_NV_READ_PUBLIC 0x169
#define TPM2_CC_GET_CAPABILITY 0x17a
#define TPM2_CC_GET_RANDOM 0x17b
#define TPM2_CC_PCR_READ 0x17e
#define TPM2_CC_PCR_EXTEND 0x182

#define TPM2_RH_OWNER 0x40000001
#define TPM2_RS_PW 0x40000009

/* TPMA_NV bits (Part 2, 13.4). */
#define TPMA_NV_OWNERWRITE (1u << 1)
#define TPMA_NV_AUTHWRITE (1u << 2)
#define TPMA_NV_TPM_NT_COUNTER (1u << 4)
#define TPMA_NV_OWNERREAD (1u << 17)
#define TPMA_NV_AUTHREAD (1u << 18)
#define TPMA_NV_NO_DA (1u << 25)
#define TPMA_NV_WRITTEN (1u << 29)

/* TPM_CAP_TPM_PROPERTIES and the fixed properties shown as the TPM identity. */
#define TPM2_CAP_TPM_PROPERTIES 6
#define TPM2_PT_FAMILY_INDICATOR 0x100
#define TPM2_PT_LEVEL 0x101
#define TPM2_PT_REVISION 0x102
#define TPM2_PT_MANUFACTURER 0x105
#define TPM2_PT_VENDOR_STRING_1 0x106
#define TPM2_PT_FIRMWARE_VERSION_1 0x10b
#define TPM2_PT_FIRMWARE_VERSION_2 0x10c

#define TPM2_BUF_MAX 4096

typedef struct Tpm {
    TisDev *tis;
    uint8_t cmd[TPM2_BUF_MAX];
    size_t cmd_len;
    uint8_t resp[TPM2_BUF_MAX];
    size_t resp_len;
    char err[224];
} Tpm;

int tpm2_startup(Tpm *tpm, uint16_t type);
int tpm2_get_random(Tpm *tpm, uint8_t *out, uint16_t want, uint16_t *got);
int tpm2_pcr_extend(Tpm *tpm, uint32_t pcr, const uint8_t digest[32]);
/* PCR value in the SHA-256 bank. */
int tpm2_pcr_read(Tpm *tpm, uint32_t pcr, uint8_t digest[32]);
int tpm2_nv_define(Tpm *tpm, uint32_t index, uint32_t attrs, uint16_t size);
int tpm2_nv_undefine(Tpm *tpm, uint32_t index);
int tpm2_nv_read_public(Tpm *tpm, uint32_t index, uint32_t *attrs, uint16_t *size);
int tpm2_nv_write(Tpm *tpm, uint32_t index, const uint8_t *data, uint16_t len,
                  uint16_t offset);
int tpm2_nv_read(Tpm *tpm, uint32_t index, uint8_t *data, uint16_t len, uint16_t offset);
int tpm2_nv_increment(Tpm *tpm, uint32_t index);
/* Up to `max` (property, value) pairs starting at `first`; *n = pairs returned. */
int tpm2_get_properties(Tpm *tpm, uint32_t first, uint32_t count, uint32_t *props,
                        uint32_t *values, uint32_t max, uint32_t *n);

/* Send tpm->cmd (tpm->cmd_len bytes), receive into tpm->resp. */
int tpm2_exec(Tpm *tpm);

#endif
