/*
 * TPM TIS FIFO driver; see tis.h. Behaviour follows the TCG PC Client
 * Platform TPM Profile (PTP) FIFO interface, with the Expect/dataAvail checks
 * a Linux guest makes (tpm_tis_core: tpm_tis_send_data, recv_data).
 */
#include "tis.h"

uint32_t tis_read(TisDev *dev, int locality, unsigned reg, unsigned size)
{
    dev->accesses++;
    return plat_mmio_read(dev->base + ((uint64_t)locality << 12) + reg, size);
}

void tis_write(TisDev *dev, int locality, unsigned reg, unsigned size, uint32_t val)
{
    dev->accesses++;
    plat_mmio_write(dev->base + ((uint64_t)locality << 12) + reg, size, val);
}

static bool tis_fail(TisDev *dev, const char *what, uint32_t val)
{
    plat_snprintf(dev->err, sizeof(dev->err), "%s (value 0x%x)", what, (unsigned)val);
    return false;
}

bool tis_probe(TisDev *dev, uint64_t base)
{
    uint64_t start;
    uint32_t access;

    memset(dev, 0, sizeof(*dev));
    dev->base = base;
    dev->locality = -1;

    /* tpmRegValidSts must come up within TIMEOUT_A. */
    start = plat_now_us();
    for (;;) {
        access = tis_read(dev, 0, TIS_ACCESS, 1);
        if (access != 0xff && (access & TIS_ACCESS_VALID)) {
            break;
        }
        if (plat_now_us() - start > TIS_TIMEOUT_A) {
            return tis_fail(dev, "ACCESS never showed tpmRegValidSts: no TPM here",
                            access);
        }
        plat_relax();
    }
    dev->did_vid = tis_read(dev, 0, TIS_DID_VID, 4);
    if (dev->did_vid == 0 || dev->did_vid == 0xffffffff) {
        return tis_fail(dev, "DID_VID is not a device id", dev->did_vid);
    }
    dev->rid = (uint8_t)tis_read(dev, 0, TIS_RID, 1);
    dev->intf_caps = tis_read(dev, 0, TIS_INTF_CAPS, 4);
    if (dev->intf_caps == 0xffffffff) {
        return tis_fail(dev, "INTF_CAPABILITY reads all-ones", dev->intf_caps);
    }
    dev->interface_id = tis_read(dev, 0, TIS_INTERFACE_ID, 4);
    dev->irq = tis_read(dev, 0, TIS_INT_VECTOR, 1) & 0xf;

    /* The TPM family is in STS, which only the active locality may read. */
    if (!tis_request_locality(dev, 0)) {
        return false;
    }
    dev->tpm2 =
        (tis_read(dev, 0, TIS_STS, 4) & TIS_STS_FAMILY_MASK) == TIS_STS_FAMILY_TPM2;
    /* Interrupts off until asked for (what Linux does before it probes). */
    tis_write(dev, 0, TIS_INT_ENABLE, 4,
              tis_read(dev, 0, TIS_INT_ENABLE, 4) & ~TIS_INT_GLOBAL);
    tis_release_locality(dev);
    return true;
}

bool tis_request_locality(TisDev *dev, int locality)
{
    uint64_t start;
    uint32_t access;

    if (dev->locality == locality) {
        return true;
    }
    tis_write(dev, locality, TIS_ACCESS, 1, TIS_ACCESS_REQUEST_USE);
    start = plat_now_us();
    for (;;) {
        access = tis_read(dev, locality, TIS_ACCESS, 1);
        /* Granted: active and valid, and our request no longer pending. */
        if ((access & (TIS_ACCESS_VALID | TIS_ACCESS_ACTIVE | TIS_ACCESS_REQUEST_USE)) ==
            (TIS_ACCESS_VALID | TIS_ACCESS_ACTIVE)) {
            dev->locality = locality;
            return true;
        }
        if (plat_now_us() - start > TIS_TIMEOUT_A) {
            plat_snprintf(dev->err, sizeof(dev->err),
                          "locality %d not granted within TIMEOUT_A (ACCESS 0x%x)",
                          locality, (unsigned)access);
            return false;
        }
        plat_relax();
    }
}

void tis_release_locality(TisDev *dev)
{
    if (dev->locality >= 0) {
        tis_write(dev, dev->locality, TIS_ACCESS, 1, TIS_ACCESS_ACTIVE);
        dev->locality = -1;
    }
}

static uint8_t tis_status(TisDev *dev)
{
    return (uint8_t)tis_read(dev, dev->locality, TIS_STS, 1);
}

/* Clear and return pending interrupt causes of the active locality. */
static uint32_t tis_ack_irq(TisDev *dev)
{
    uint32_t st = tis_read(dev, dev->locality, TIS_INT_STATUS, 4);

    if (st && st != 0xffffffff) {
        tis_write(dev, dev->locality, TIS_INT_STATUS, 4, st);
    }
    return st;
}

/*
 * Wait until (STS & mask) == mask. With interrupts, sleep on the TPM line
 * between checks; the count is sampled before reading STS so that an
 * interrupt arriving in between is not lost.
 */
static bool tis_wait_status(TisDev *dev, uint8_t mask, uint64_t timeout_us,
                            const char *what)
{
    uint64_t start = 0;

    for (;;) {
        uint64_t seen = dev->use_irq ? plat_irq_count(dev->irq) : 0;
        uint8_t sts = tis_status(dev);

        if (sts != 0xff && (sts & TIS_STS_INVALID_BITS)) {
            plat_snprintf(dev->err, sizeof(dev->err), "%s: invalid status byte 0x%02x",
                          what, sts);
            return false;
        }
        if ((sts & mask) == mask) {
            return true;
        }
        /* The clock is read only once the status was not ready at once:
         * under emulated guest code every instruction counts. */
        if (!start) {
            start = plat_now_us();
        } else if (plat_now_us() - start > timeout_us) {
            plat_snprintf(dev->err, sizeof(dev->err), "%s: timed out (STS 0x%02x)", what,
                          sts);
            return false;
        }
        if (dev->use_irq) {
            if (plat_irq_wait(dev->irq, seen, 100000)) {
                dev->irq_waits++;
                tis_ack_irq(dev);
            }
        } else {
            plat_relax();
        }
    }
}

/*
 * Only dataAvail is enabled: then every interrupt is a command completion,
 * and the driver can sleep right after tpmGo until it comes.
 */
bool tis_enable_irq(TisDev *dev)
{
    uint32_t en = TIS_INT_GLOBAL | TIS_INT_DATA_AVAIL;

    if (!plat_irq_available()) {
        plat_snprintf(dev->err, sizeof(dev->err), "no interrupt support here");
        return false;
    }
    if (!(dev->intf_caps & TIS_INT_DATA_AVAIL)) {
        return tis_fail(dev, "INTF_CAPABILITY lacks the dataAvail interrupt",
                        dev->intf_caps);
    }
    if (!tis_request_locality(dev, 0)) {
        return false;
    }
    /* Keep the polarity field as the TPM reports it (low level by default). */
    en |= tis_read(dev, 0, TIS_INT_ENABLE, 4) & 0x18;
    tis_write(dev, 0, TIS_INT_ENABLE, 4, en);
    tis_ack_irq(dev);
    if ((tis_read(dev, 0, TIS_INT_ENABLE, 4) & en) != en) {
        tis_release_locality(dev);
        return tis_fail(dev, "INT_ENABLE did not keep the enable bits",
                        tis_read(dev, 0, TIS_INT_ENABLE, 4));
    }
    tis_release_locality(dev);
    plat_irq_enable(dev->irq);
    dev->use_irq = true;
    return true;
}

void tis_disable_irq(TisDev *dev)
{
    dev->use_irq = false;
    if (tis_request_locality(dev, 0)) {
        tis_write(dev, 0, TIS_INT_ENABLE, 4,
                  tis_read(dev, 0, TIS_INT_ENABLE, 4) & ~TIS_INT_GLOBAL);
        tis_ack_irq(dev);
        tis_release_locality(dev);
    }
}

/* Burst count (STS bits 23:8); waits up to TIMEOUT_D for a non-zero one. */
static uint32_t tis_burst_count(TisDev *dev)
{
    uint64_t start = 0;

    for (;;) {
        uint32_t sts = tis_read(dev, dev->locality, TIS_STS, 4);
        uint32_t burst = (sts >> 8) & 0xffff;

        if (sts != 0xffffffff && burst) {
            return burst;
        }
        if (!start) {
            start = plat_now_us();
        } else if (plat_now_us() - start > TIS_TIMEOUT_D) {
            plat_snprintf(dev->err, sizeof(dev->err), "burst count stayed 0 (STS 0x%x)",
                          (unsigned)sts);
            return 0;
        }
        plat_relax();
    }
}

/* Move n bytes into the FIFO: one byte per access, or 4 per XDATA access. */
static void tis_fifo_write(TisDev *dev, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (dev->xfer == TIS_XFER_BURST) {
        for (; i + 4 <= n; i += 4) {
            uint32_t v = p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                         (uint32_t)p[i + 3] << 24;

            tis_write(dev, dev->locality, TIS_XDATA_FIFO, 4, v);
        }
    }
    for (; i < n; i++) {
        tis_write(dev, dev->locality,
                  dev->xfer == TIS_XFER_BURST ? TIS_XDATA_FIFO : TIS_DATA_FIFO, 1, p[i]);
    }
}

static void tis_fifo_read(TisDev *dev, uint8_t *p, size_t n)
{
    size_t i = 0;

    if (dev->xfer == TIS_XFER_BURST) {
        for (; i + 4 <= n; i += 4) {
            uint32_t v = tis_read(dev, dev->locality, TIS_XDATA_FIFO, 4);

            p[i] = (uint8_t)v;
            p[i + 1] = (uint8_t)(v >> 8);
            p[i + 2] = (uint8_t)(v >> 16);
            p[i + 3] = (uint8_t)(v >> 24);
        }
    }
    for (; i < n; i++) {
        p[i] = (uint8_t)tis_read(
            dev, dev->locality,
            dev->xfer == TIS_XFER_BURST ? TIS_XDATA_FIFO : TIS_DATA_FIFO, 1);
    }
}

bool tis_ready(TisDev *dev)
{
    if (tis_status(dev) & TIS_STS_COMMAND_READY) {
        return true;
    }
    tis_write(dev, dev->locality, TIS_STS, 1, TIS_STS_COMMAND_READY);
    return tis_wait_status(dev, TIS_STS_COMMAND_READY, TIS_TIMEOUT_B, "commandReady");
}

bool tis_send(TisDev *dev, const uint8_t *cmd, size_t len)
{
    size_t count = 0;
    uint8_t sts;

    if (len < 10 || len > TIS_BUFFER_MAX) {
        plat_snprintf(dev->err, sizeof(dev->err), "command length %u out of range",
                      (unsigned)len);
        return false;
    }
    if (!tis_ready(dev)) {
        return false;
    }
    /* All but the last byte in burst-count sized pieces; Expect must stay set. */
    while (count < len - 1) {
        uint32_t burst = tis_burst_count(dev);
        size_t n;

        if (!burst) {
            return false;
        }
        n = len - 1 - count;
        if (n > burst) {
            n = burst;
        }
        tis_fifo_write(dev, cmd + count, n);
        count += n;
        if (!tis_wait_status(dev, TIS_STS_VALID, TIS_TIMEOUT_C, "stsValid (send)")) {
            return false;
        }
        sts = tis_status(dev);
        if (!(sts & TIS_STS_EXPECT)) {
            plat_snprintf(dev->err, sizeof(dev->err),
                          "Expect dropped after %u of %u bytes (STS 0x%02x)",
                          (unsigned)count, (unsigned)len, sts);
            return false;
        }
    }
    /* The last byte: the TPM must now expect nothing more. */
    tis_fifo_write(dev, cmd + count, 1);
    if (!tis_wait_status(dev, TIS_STS_VALID, TIS_TIMEOUT_C, "stsValid (last byte)")) {
        return false;
    }
    sts = tis_status(dev);
    if (sts & TIS_STS_EXPECT) {
        plat_snprintf(dev->err, sizeof(dev->err),
                      "Expect still set after the whole command (STS 0x%02x)", sts);
        return false;
    }
    return true;
}

bool tis_go_and_wait(TisDev *dev)
{
    uint64_t seen = 0;

    /* The interrupt controller sees edges: the line must be low before the
     * completion raises it, so acknowledge what an earlier command latched. */
    if (dev->use_irq) {
        tis_ack_irq(dev);
        seen = plat_irq_count(dev->irq);
    }
    tis_write(dev, dev->locality, TIS_STS, 1, TIS_STS_GO);
    if (dev->use_irq) {
        if (!plat_irq_wait(dev->irq, seen, TIS_TIMEOUT_COMMAND)) {
            plat_snprintf(dev->err, sizeof(dev->err),
                          "no dataAvail interrupt (IRQ %u) after tpmGo", dev->irq);
            return false;
        }
        dev->irq_waits++;
        tis_ack_irq(dev);
    }
    return tis_wait_status(dev, TIS_STS_VALID | TIS_STS_DATA_AVAIL, TIS_TIMEOUT_COMMAND,
                           "dataAvail");
}

/* Read up to `want` bytes in burst-count sized pieces. */
static bool tis_recv_data(TisDev *dev, uint8_t *p, size_t want)
{
    size_t got = 0;

    while (got < want) {
        uint32_t burst;
        size_t n;

        if (!tis_wait_status(dev, TIS_STS_VALID | TIS_STS_DATA_AVAIL, TIS_TIMEOUT_C,
                             "dataAvail (receive)")) {
            return false;
        }
        burst = tis_burst_count(dev);
        if (!burst) {
            return false;
        }
        n = want - got;
        if (n > burst) {
            n = burst;
        }
        tis_fifo_read(dev, p + got, n);
        got += n;
    }
    return true;
}

long tis_recv(TisDev *dev, uint8_t *resp, size_t resp_max)
{
    uint32_t size;
    uint8_t sts;

    if (resp_max < 10) {
        plat_snprintf(dev->err, sizeof(dev->err), "response buffer too small");
        return -1;
    }
    if (!tis_recv_data(dev, resp, 10)) {
        return -1;
    }
    size = (uint32_t)resp[2] << 24 | (uint32_t)resp[3] << 16 | (uint32_t)resp[4] << 8 |
           resp[5];
    if (size < 10 || size > resp_max) {
        plat_snprintf(dev->err, sizeof(dev->err),
                      "response header announces %u bytes (buffer %u)", (unsigned)size,
                      (unsigned)resp_max);
        return -1;
    }
    if (!tis_recv_data(dev, resp + 10, size - 10)) {
        return -1;
    }
    /* Everything read: dataAvail must be gone ("left over data" otherwise). */
    if (!tis_wait_status(dev, TIS_STS_VALID, TIS_TIMEOUT_C, "stsValid (receive end)")) {
        return -1;
    }
    sts = tis_status(dev);
    if (sts & TIS_STS_DATA_AVAIL) {
        plat_snprintf(dev->err, sizeof(dev->err),
                      "dataAvail still set after %u response bytes (STS 0x%02x)",
                      (unsigned)size, sts);
        return -1;
    }
    return (long)size;
}

long tis_transmit(TisDev *dev, const uint8_t *cmd, size_t len, uint8_t *resp,
                  size_t resp_max)
{
    long n = -1;

    if (!tis_request_locality(dev, 0)) {
        return -1;
    }
    if (tis_send(dev, cmd, len) && tis_go_and_wait(dev)) {
        n = tis_recv(dev, resp, resp_max);
    }
    /* Back to ready (this also aborts a command that failed half-way). */
    tis_write(dev, dev->locality, TIS_STS, 1, TIS_STS_COMMAND_READY);
    if (dev->use_irq) {
        tis_ack_irq(dev);
    }
    tis_release_locality(dev);
    dev->commands++;
    return n;
}
