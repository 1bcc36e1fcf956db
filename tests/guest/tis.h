/*
 * A TPM TIS (FIFO interface) driver written the way an OS driver works
 * (TCG PC Client Platform TPM Profile / TIS 1.3; the checks mirror Linux's
 * tpm_tis_core): probe the identity registers, request a locality, send a
 * command through the FIFO while checking Expect, start it with tpmGo, wait
 * for dataAvail by polling STS or on the TPM interrupt, read the response in
 * burst-count sized pieces, check that no data is left, relinquish.
 *
 * Transfers are byte-wise through DATA_FIFO (what Linux does) or in 4-byte
 * accesses through XDATA_FIFO (0x80-0xBF).
 */
#ifndef GUEST_TIS_H
#define GUEST_TIS_H

#include "tpm-plat.h"

#define TIS_BASE 0xfed40000ULL
#define TIS_LOCALITIES 5

/* Register offsets inside a locality's 4 KiB page. */
#define TIS_ACCESS 0x00
#define TIS_INT_ENABLE 0x08
#define TIS_INT_VECTOR 0x0c
#define TIS_INT_STATUS 0x10
#define TIS_INTF_CAPS 0x14
#define TIS_STS 0x18
#define TIS_DATA_FIFO 0x24
#define TIS_INTERFACE_ID 0x30
#define TIS_XDATA_FIFO 0x80
#define TIS_DID_VID 0xf00
#define TIS_RID 0xf04

#define TIS_ACCESS_VALID 0x80
#define TIS_ACCESS_ACTIVE 0x20
#define TIS_ACCESS_SEIZED 0x10
#define TIS_ACCESS_SEIZE 0x08
#define TIS_ACCESS_PENDING 0x04
#define TIS_ACCESS_REQUEST_USE 0x02
#define TIS_ACCESS_ESTABLISHMENT 0x01

#define TIS_STS_FAMILY_MASK (3u << 26)
#define TIS_STS_FAMILY_TPM2 (1u << 26)
#define TIS_STS_CANCEL (1u << 24)
#define TIS_STS_VALID 0x80
#define TIS_STS_COMMAND_READY 0x40
#define TIS_STS_GO 0x20
#define TIS_STS_DATA_AVAIL 0x10
#define TIS_STS_EXPECT 0x08
#define TIS_STS_RESPONSE_RETRY 0x02
/* Bits that are never set in a valid status byte (Linux: "invalid status"). */
#define TIS_STS_INVALID_BITS 0x23

#define TIS_INT_GLOBAL (1u << 31)
#define TIS_INT_DATA_AVAIL 0x01
#define TIS_INT_STS_VALID 0x02
#define TIS_INT_LOCALITY_CHANGE 0x04
#define TIS_INT_COMMAND_READY 0x80

/* Timeouts of the PC Client profile (TIMEOUT_A..D), in microseconds. */
#define TIS_TIMEOUT_A 750000
#define TIS_TIMEOUT_B 2000000
#define TIS_TIMEOUT_C 200000
#define TIS_TIMEOUT_D 30000000
/* Longest command we wait for (NV writes go to an encrypted image). */
#define TIS_TIMEOUT_COMMAND 120000000

#define TIS_BUFFER_MAX 4096

typedef enum { TIS_XFER_BYTE, TIS_XFER_BURST } TisXfer;

typedef struct TisDev {
    uint64_t base;
    int locality; /* -1: none held */
    TisXfer xfer;
    bool use_irq; /* wait for dataAvail on the TPM interrupt */
    unsigned irq; /* from INT_VECTOR */
    uint32_t did_vid;
    uint8_t rid;
    uint32_t intf_caps;
    uint32_t interface_id;
    bool tpm2;
    /* statistics */
    uint64_t accesses;  /* MMIO accesses (= exits under KVM) */
    uint64_t irq_waits; /* waits that ended with an interrupt */
    uint64_t commands;
    char err[192]; /* why the last call failed */
} TisDev;

/* Find the TPM at `base`: registers valid, identity sane, family known. */
bool tis_probe(TisDev *dev, uint64_t base);
/* Enable the TPM interrupt (dataAvail, stsValid, commandReady, locality change). */
bool tis_enable_irq(TisDev *dev);
void tis_disable_irq(TisDev *dev);

bool tis_request_locality(TisDev *dev, int locality);
void tis_release_locality(TisDev *dev);

/*
 * One command: request locality 0, send, execute, receive, relinquish.
 * Returns the response length, or -1 with dev->err set.
 */
long tis_transmit(TisDev *dev, const uint8_t *cmd, size_t len, uint8_t *resp,
                  size_t resp_max);

/* Single steps, for tests of the interface itself. */
bool tis_send(TisDev *dev, const uint8_t *cmd, size_t len);
bool tis_go_and_wait(TisDev *dev);
long tis_recv(TisDev *dev, uint8_t *resp, size_t resp_max);
bool tis_ready(TisDev *dev);

/* Raw register access in the current or a given locality (counted). */
uint32_t tis_read(TisDev *dev, int locality, unsigned reg, unsigned size);
void tis_write(TisDev *dev, int locality, unsigned reg, unsigned size, uint32_t val);

#endif
