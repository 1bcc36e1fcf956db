/*
 * TPM scenarios shared by the test guest and the host-side qtest client.
 * See tpm-tests.h.
 */
#include "tpm-tests.h"

#include "sha256.h"

bool tt_check(TestCtx *t, bool ok, const char *what, const char *why)
{
    t->checks++;
    if (ok) {
        if (!t->quiet) {
            plat_printf("ok %u - %s\n", t->checks, what);
        }
    } else {
        t->failures++;
        plat_printf("not ok %u - %s: %s\n", t->checks, what, why ? why : "failed");
    }
    return ok;
}

uint32_t tt_random(TestCtx *t)
{
    /* xorshift32: reproducible register storms for a given seed */
    uint32_t x = t->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    t->rng = x;
    return x;
}

void tt_hex(const uint8_t *p, size_t n, char *out, size_t out_len)
{
    size_t j = 0;

    for (size_t i = 0; i < n && j + 2 < out_len; i++) {
        out[j++] = "0123456789abcdef"[p[i] >> 4];
        out[j++] = "0123456789abcdef"[p[i] & 15];
    }
    out[j] = 0;
}

bool tt_init(TestCtx *t, uint32_t seed)
{
    memset(t, 0, sizeof(*t));
    t->rng = seed ? seed : 0x2545f491;
    t->tpm.tis = &t->tis;
    if (!tis_probe(&t->tis, TIS_BASE)) {
        plat_printf("not ok 1 - TPM TIS at 0x%lx: %s\n", (unsigned long)TIS_BASE,
                    t->tis.err);
        t->checks = t->failures = 1;
        return false;
    }
    return true;
}

bool tt_startup(TestCtx *t, bool strict)
{
    int rc = tpm2_startup(&t->tpm, TPM2_SU_CLEAR);

    if (rc == TPM2_RC_INITIALIZE && !strict) {
        rc = 0;
    }
    return tt_check(t, rc == 0, "TPM2_Startup(CLEAR)", t->tpm.err);
}

static bool tt_rc(TestCtx *t, int rc, const char *what)
{
    return tt_check(t, rc == 0, what, t->tpm.err);
}

/* PCR_Extend with `d`, then PCR_Read must equal SHA-256(old || d). */
static bool tt_extend_and_verify(TestCtx *t, uint32_t pcr, const uint8_t d[32],
                                 uint8_t value[32], const char *what)
{
    uint8_t before[32], after[32], expect[32], cat[64];
    char why[200], hex[65];
    Sha256 s;

    if (!tt_rc(t, tpm2_pcr_read(&t->tpm, pcr, before), "TPM2_PCR_Read before extend") ||
        !tt_rc(t, tpm2_pcr_extend(&t->tpm, pcr, d), "TPM2_PCR_Extend") ||
        !tt_rc(t, tpm2_pcr_read(&t->tpm, pcr, after), "TPM2_PCR_Read after extend")) {
        return false;
    }
    memcpy(cat, before, 32);
    memcpy(cat + 32, d, 32);
    sha256_init(&s);
    sha256_update(&s, cat, 64);
    sha256_final(&s, expect);
    tt_hex(after, 32, hex, sizeof(hex));
    plat_snprintf(why, sizeof(why), "PCR %u is %s, not SHA-256(old || digest)",
                  (unsigned)pcr, hex);
    if (value) {
        memcpy(value, after, 32);
    }
    return tt_check(t, memcmp(after, expect, 32) == 0, what, why);
}

static void tt_report_locality(TestCtx *t, int loc)
{
    char what[64], why[96];
    uint32_t a;

    plat_snprintf(what, sizeof(what), "locality %d request/relinquish", loc);
    if (!tis_request_locality(&t->tis, loc)) {
        tt_check(t, false, what, t->tis.err);
        return;
    }
    a = tis_read(&t->tis, loc, TIS_ACCESS, 1);
    tis_release_locality(&t->tis);
    a = a << 8 | tis_read(&t->tis, loc, TIS_ACCESS, 1);
    plat_snprintf(why, sizeof(why), "ACCESS 0x%02x while active, 0x%02x after release",
                  (unsigned)(a >> 8), (unsigned)(a & 0xff));
    tt_check(t,
             ((a >> 8) & 0xfe) == (TIS_ACCESS_VALID | TIS_ACCESS_ACTIVE) &&
                 (a & 0xfe) == TIS_ACCESS_VALID,
             what, why);
}

/* Response retry: the same response can be read twice. */
static void tt_check_response_retry(TestCtx *t)
{
    static const uint8_t cmd[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8};
    uint8_t r1[64], r2[64];
    long n1 = -1, n2 = -1;

    if (tis_request_locality(&t->tis, 0) && tis_send(&t->tis, cmd, sizeof(cmd)) &&
        tis_go_and_wait(&t->tis)) {
        n1 = tis_recv(&t->tis, r1, sizeof(r1));
        if (n1 > 0) {
            tis_write(&t->tis, 0, TIS_STS, 1, TIS_STS_RESPONSE_RETRY);
            n2 = tis_recv(&t->tis, r2, sizeof(r2));
        }
    }
    tis_write(&t->tis, 0, TIS_STS, 1, TIS_STS_COMMAND_READY);
    tis_release_locality(&t->tis);
    tt_check(t, n1 == 20 && n2 == n1 && memcmp(r1, r2, 20) == 0,
             "responseRetry returns the same response again",
             n1 < 0 || n2 < 0 ? t->tis.err : "responses differ");
}

/* commandReady during reception aborts; the next command works. */
static void tt_check_abort(TestCtx *t)
{
    static const uint8_t part[5] = {0x80, 0x01, 0, 0, 0};
    uint8_t sts = 0, sts2 = 0;
    bool ok = false;

    if (tis_request_locality(&t->tis, 0) && tis_ready(&t->tis)) {
        for (int i = 0; i < 5; i++) {
            tis_write(&t->tis, 0, TIS_DATA_FIFO, 1, part[i]);
        }
        sts = (uint8_t)tis_read(&t->tis, 0, TIS_STS, 1);
        tis_write(&t->tis, 0, TIS_STS, 1, TIS_STS_COMMAND_READY);
        sts2 = (uint8_t)tis_read(&t->tis, 0, TIS_STS, 1);
        ok = (sts & TIS_STS_EXPECT) && (sts2 & TIS_STS_COMMAND_READY) &&
             !(sts2 & TIS_STS_EXPECT);
    }
    tis_release_locality(&t->tis);
    {
        char why[96];

        plat_snprintf(why, sizeof(why), "STS 0x%02x mid-command, 0x%02x after abort", sts,
                      sts2);
        tt_check(t, ok, "commandReady aborts a half-sent command", why);
    }
}

unsigned tt_run_check(TestCtx *t, TisXfer xfer, bool first_round, bool strict_startup)
{
    const char *mode = xfer == TIS_XFER_BURST ? "burst" : "byte";
    unsigned before = t->failures;
    uint8_t r1[32], r2[32], d[32], nvw[512], nvr[512], pcr[32];
    uint16_t got1 = 0, got2 = 0;
    uint32_t attrs;
    uint16_t nvsize;
    char label[96];
    int rc;

    t->tis.xfer = xfer;
    plat_printf("# driver checks, %s transfers\n", mode);
    if (first_round) {
        char why[128];

        plat_snprintf(why, sizeof(why),
                      "DID_VID 0x%08x, INTF_CAPABILITY 0x%08x, INTERFACE_ID 0x%08x",
                      (unsigned)t->tis.did_vid, (unsigned)t->tis.intf_caps,
                      (unsigned)t->tis.interface_id);
        tt_check(t, t->tis.tpm2, "TPM family is 2.0 (STS bits 27:26)", why);
        tt_check(t, ((t->tis.intf_caps >> 28) & 7) == 3,
                 "INTF_CAPABILITY: interface version 1.3 for TPM 2.0", why);
        tt_check(t, ((t->tis.intf_caps >> 9) & 3) == 3,
                 "INTF_CAPABILITY: 64-byte transfers (XDATA_FIFO)", why);
        tt_check(t,
                 (t->tis.interface_id & 0xf) == 0 || (t->tis.interface_id & 0xf) == 0xf,
                 "INTERFACE_ID: FIFO interface", why);
        for (int loc = 0; loc < 4; loc++) {
            tt_report_locality(t, loc);
        }
        if (!tt_startup(t, strict_startup)) {
            return t->failures - before;
        }
    }

    plat_snprintf(label, sizeof(label), "TPM2_GetRandom(32) twice, %s", mode);
    rc = tpm2_get_random(&t->tpm, r1, 32, &got1);
    if (rc == 0) {
        rc = tpm2_get_random(&t->tpm, r2, 32, &got2);
    }
    tt_check(t, rc == 0 && got1 == 32 && got2 == 32 && memcmp(r1, r2, 32) != 0, label,
             rc ? t->tpm.err : "short or repeated random bytes");

    if (first_round) {
        static const uint8_t zero[32];

        rc = tpm2_pcr_read(&t->tpm, TT_PCR_CHECK, pcr);
        tt_check(t, rc == 0 && memcmp(pcr, zero, 32) == 0,
                 "PCR 16 is zero after TPM2_Startup(CLEAR)",
                 rc ? t->tpm.err : "PCR 16 is not zero (the TPM was not reset)");
    }
    for (int i = 0; i < 2; i++) {
        plat_snprintf(label, sizeof(label), "tpmvm check %s %d", mode, i);
        sha256(label, strlen(label), d);
        plat_snprintf(label, sizeof(label), "PCR 16 extend #%d matches SHA-256, %s",
                      i + 1, mode);
        tt_extend_and_verify(t, TT_PCR_CHECK, d, NULL, label);
    }

    /* NV: define, write 512 bytes (several bursts), read back, undefine. */
    if (tpm2_nv_read_public(&t->tpm, TT_NV_CHECK_INDEX, &attrs, &nvsize) == 0) {
        tpm2_nv_undefine(&t->tpm, TT_NV_CHECK_INDEX);
    }
    rc = tpm2_nv_define(&t->tpm, TT_NV_CHECK_INDEX,
                        TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD |
                            TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
                        sizeof(nvw));
    plat_snprintf(label, sizeof(label), "TPM2_NV_DefineSpace 512 bytes, %s", mode);
    if (tt_rc(t, rc, label)) {
        for (size_t i = 0; i < sizeof(nvw); i++) {
            nvw[i] = (uint8_t)tt_random(t);
        }
        plat_snprintf(label, sizeof(label), "TPM2_NV_Write 512 bytes, %s", mode);
        if (tt_rc(t, tpm2_nv_write(&t->tpm, TT_NV_CHECK_INDEX, nvw, sizeof(nvw), 0),
                  label)) {
            rc = tpm2_nv_read(&t->tpm, TT_NV_CHECK_INDEX, nvr, sizeof(nvr), 0);
            plat_snprintf(label, sizeof(label),
                          "TPM2_NV_Read returns what was written, %s", mode);
            tt_check(t, rc == 0 && memcmp(nvw, nvr, sizeof(nvw)) == 0, label,
                     rc ? t->tpm.err : "data differs");
        }
        plat_snprintf(label, sizeof(label), "TPM2_NV_UndefineSpace, %s", mode);
        tt_rc(t, tpm2_nv_undefine(&t->tpm, TT_NV_CHECK_INDEX), label);
    }

    if (first_round) {
        tt_check_response_retry(t);
        tt_check_abort(t);
    }
    return t->failures - before;
}

unsigned tt_run_irq_check(TestCtx *t)
{
    unsigned before = t->failures;
    uint64_t waits, cmds, irqs;
    uint8_t r[16];
    uint16_t got;
    char why[96];

    plat_printf("# interrupt-driven completion (TPM IRQ %u)\n", t->tis.irq);
    if (!tt_check(t, tis_enable_irq(&t->tis), "enable the TPM interrupt", t->tis.err)) {
        return t->failures - before;
    }
    waits = t->tis.irq_waits;
    cmds = t->tis.commands;
    irqs = plat_irq_count(t->tis.irq);
    for (int i = 0; i < 4; i++) {
        if (!tt_rc(t, tpm2_get_random(&t->tpm, r, sizeof(r), &got),
                   "TPM2_GetRandom completed by interrupt")) {
            break;
        }
    }
    plat_snprintf(why, sizeof(why), "%u commands, %u wake-ups, %u interrupts",
                  (unsigned)(t->tis.commands - cmds),
                  (unsigned)(t->tis.irq_waits - waits),
                  (unsigned)(plat_irq_count(t->tis.irq) - irqs));
    tt_check(t,
             t->tis.irq_waits - waits == t->tis.commands - cmds &&
                 plat_irq_count(t->tis.irq) - irqs == t->tis.commands - cmds,
             "one dataAvail interrupt completed each command", why);
    tis_disable_irq(&t->tis);
    return t->failures - before;
}

bool tt_boot_counter(TestCtx *t, uint64_t *value)
{
    uint8_t buf[8];
    uint32_t attrs;
    uint16_t size;
    int rc;

    if (tpm2_nv_read_public(&t->tpm, TT_NV_COUNTER_INDEX, &attrs, &size) != 0) {
        rc = tpm2_nv_define(&t->tpm, TT_NV_COUNTER_INDEX,
                            TPMA_NV_TPM_NT_COUNTER | TPMA_NV_OWNERWRITE |
                                TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD |
                                TPMA_NV_NO_DA,
                            8);
        if (!tt_rc(t, rc, "define the boot counter (NV counter index)")) {
            return false;
        }
    }
    if (!tt_rc(t, tpm2_nv_increment(&t->tpm, TT_NV_COUNTER_INDEX),
               "TPM2_NV_Increment of the boot counter") ||
        !tt_rc(t, tpm2_nv_read(&t->tpm, TT_NV_COUNTER_INDEX, buf, 8, 0),
               "TPM2_NV_Read of the boot counter")) {
        return false;
    }
    *value = 0;
    for (int i = 0; i < 8; i++) {
        *value = *value << 8 | buf[i];
    }
    return true;
}

/* Four property bytes as text ("IBM "), printable characters only. */
static void tt_prop_text(uint32_t v, char *out)
{
    for (int i = 0; i < 4; i++) {
        char c = (char)(v >> (24 - 8 * i));

        out[i] = c >= 0x20 && c < 0x7f ? c : ' ';
    }
    out[4] = 0;
}

unsigned tt_run_demo(TestCtx *t, const void *image, size_t image_len, const char *cmdline)
{
    unsigned before = t->failures;
    uint32_t props[16], vals[16], n = 0;
    char manuf[5] = "?", vendor[17] = "", hex[65];
    uint32_t fw1 = 0, fw2 = 0, rev = 0;
    uint8_t rnd[16], d[32], pcr[32];
    uint16_t got = 0;
    uint64_t counter = 0;

    t->quiet = true;
    if (!tt_startup(t, false)) {
        return t->failures - before;
    }
    if (tt_rc(t,
              tpm2_get_properties(&t->tpm, TPM2_PT_FAMILY_INDICATOR, 16, props, vals, 16,
                                  &n),
              "TPM2_GetCapability(TPM_PROPERTIES)")) {
        for (uint32_t i = 0; i < n; i++) {
            if (props[i] == TPM2_PT_MANUFACTURER) {
                tt_prop_text(vals[i], manuf);
            } else if (props[i] >= TPM2_PT_VENDOR_STRING_1 &&
                       props[i] < TPM2_PT_VENDOR_STRING_1 + 4) {
                tt_prop_text(vals[i], vendor + 4 * (props[i] - TPM2_PT_VENDOR_STRING_1));
            } else if (props[i] == TPM2_PT_FIRMWARE_VERSION_1) {
                fw1 = vals[i];
            } else if (props[i] == TPM2_PT_FIRMWARE_VERSION_2) {
                fw2 = vals[i];
            } else if (props[i] == TPM2_PT_REVISION) {
                rev = vals[i];
            }
        }
    }
    for (int i = (int)strlen(vendor) - 1; i >= 0 && vendor[i] == ' '; i--) {
        vendor[i] = 0;
    }
    for (int i = (int)strlen(manuf) - 1; i >= 0 && manuf[i] == ' '; i--) {
        manuf[i] = 0;
    }
    plat_printf("TPM identity: manufacturer '%s', vendor '%s', firmware %x.%08x, "
                "TPM 2.0 spec revision %u.%02u\n",
                manuf, vendor, (unsigned)fw1, (unsigned)fw2, (unsigned)rev / 100,
                (unsigned)rev % 100);
    plat_printf("TIS: DID:VID 0x%04x:0x%04x, RID 0x%02x, interface capability 0x%08x\n",
                (unsigned)(t->tis.did_vid >> 16), (unsigned)(t->tis.did_vid & 0xffff),
                t->tis.rid, (unsigned)t->tis.intf_caps);

    if (tt_rc(t, tpm2_get_random(&t->tpm, rnd, sizeof(rnd), &got),
              "TPM2_GetRandom(16)")) {
        tt_hex(rnd, got, hex, sizeof(hex));
        plat_printf("Random bytes from the TPM: %s\n", hex);
    }

    sha256(image, image_len, d);
    tt_hex(d, 32, hex, sizeof(hex));
    plat_printf("Measuring the boot image (first %u bytes, SHA-256 %s) into PCR %d\n",
                (unsigned)image_len, hex, TT_PCR_IMAGE);
    if (tt_extend_and_verify(t, TT_PCR_IMAGE, d, pcr,
                             "PCR 8 holds the image measurement")) {
        tt_hex(pcr, 32, hex, sizeof(hex));
        plat_printf("PCR %d = %s\n", TT_PCR_IMAGE, hex);
    }
    sha256(cmdline, strlen(cmdline), d);
    plat_printf("Measuring the command line '%s' into PCR %d\n", cmdline, TT_PCR_CMDLINE);
    if (tt_extend_and_verify(t, TT_PCR_CMDLINE, d, pcr,
                             "PCR 9 holds the command line measurement")) {
        tt_hex(pcr, 32, hex, sizeof(hex));
        plat_printf("PCR %d = %s\n", TT_PCR_CMDLINE, hex);
    }
    if (tt_boot_counter(t, &counter)) {
        plat_printf("Boot counter (TPM NV index 0x%x): %u\n", TT_NV_COUNTER_INDEX,
                    (unsigned)counter);
    }
    return t->failures - before;
}

unsigned tt_run_nv_write(TestCtx *t, const char *token)
{
    unsigned before = t->failures;
    uint8_t buf[TT_NV_TOKEN_SIZE] = {0};
    uint32_t attrs;
    uint16_t size;

    if (!tt_startup(t, false)) {
        return t->failures - before;
    }
    memcpy(buf, token, strlen(token) < sizeof(buf) ? strlen(token) : sizeof(buf) - 1);
    if (tpm2_nv_read_public(&t->tpm, TT_NV_TOKEN_INDEX, &attrs, &size) != 0) {
        tt_rc(t,
              tpm2_nv_define(&t->tpm, TT_NV_TOKEN_INDEX,
                             TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD |
                                 TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
                             sizeof(buf)),
              "define the token NV index");
    }
    if (tt_rc(t, tpm2_nv_write(&t->tpm, TT_NV_TOKEN_INDEX, buf, sizeof(buf), 0),
              "write the token to NV")) {
        plat_printf("nv-write: stored token '%s'\n", token);
    }
    return t->failures - before;
}

unsigned tt_run_nv_read(TestCtx *t, const char *token)
{
    unsigned before = t->failures;
    uint8_t buf[TT_NV_TOKEN_SIZE], want[TT_NV_TOKEN_SIZE] = {0};
    uint32_t attrs = 0;
    uint16_t size = 0;
    char why[128];
    int rc;

    if (!tt_startup(t, false)) {
        return t->failures - before;
    }
    memcpy(want, token, strlen(token) < sizeof(want) ? strlen(token) : sizeof(want) - 1);
    rc = tpm2_nv_read_public(&t->tpm, TT_NV_TOKEN_INDEX, &attrs, &size);
    if (!tt_check(t, rc == 0 && (attrs & TPMA_NV_WRITTEN),
                  "the token NV index exists and was written", t->tpm.err)) {
        return t->failures - before;
    }
    rc = tpm2_nv_read(&t->tpm, TT_NV_TOKEN_INDEX, buf, sizeof(buf), 0);
    buf[sizeof(buf) - 1] = 0;
    plat_snprintf(why, sizeof(why), "found '%s'", rc ? "?" : (const char *)buf);
    if (tt_check(t, rc == 0 && memcmp(buf, want, sizeof(buf)) == 0,
                 "NV holds the token written by the previous run", why)) {
        plat_printf("nv-read: found token '%s'\n", token);
    }
    return t->failures - before;
}

unsigned tt_run_reset_boot(TestCtx *t, uint64_t *counter)
{
    static const uint8_t zero[32];
    unsigned before = t->failures;
    uint8_t pcr[32], d[32];
    int rc;

    if (!tt_startup(t, true)) {
        return t->failures - before;
    }
    rc = tpm2_pcr_read(&t->tpm, TT_PCR_CHECK, pcr);
    tt_check(t, rc == 0 && memcmp(pcr, zero, 32) == 0, "PCR 16 starts at zero",
             rc ? t->tpm.err : "PCR 16 kept a value from before the reset");
    sha256("reset scenario", 14, d);
    tt_extend_and_verify(t, TT_PCR_CHECK, d, NULL, "PCR 16 extended");
    tt_boot_counter(t, counter);
    return t->failures - before;
}

/* Register offsets the storm covers besides random ones. */
static const uint16_t tt_hostile_regs[] = {
    TIS_ACCESS,
    TIS_INT_ENABLE,
    TIS_INT_ENABLE + 3,
    TIS_INT_VECTOR,
    TIS_INT_STATUS,
    TIS_INTF_CAPS,
    TIS_STS,
    TIS_STS + 1,
    TIS_STS + 2,
    TIS_STS + 3,
    TIS_DATA_FIFO,
    TIS_DATA_FIFO + 1,
    TIS_DATA_FIFO + 3,
    TIS_INTERFACE_ID,
    TIS_INTERFACE_ID + 2,
    TIS_XDATA_FIFO,
    TIS_XDATA_FIFO + 0x3c,
    TIS_XDATA_FIFO + 0x3f,
    TIS_DID_VID,
    TIS_RID,
    0x04,
    0x1c,
    0x20,
    0x28,
    0x40,
    0x7c,
    0xc0,
    0xf90,
    0xffc,
    0xfff,
};

unsigned tt_run_hostile(TestCtx *t, unsigned rounds)
{
    static const unsigned sizes[3] = {1, 2, 4};
    unsigned before = t->failures;
    uint64_t writes = 0, reads = 0;
    uint8_t r[32];
    uint16_t got = 0;
    char why[160];
    int rc;

    plat_printf("# hostile: random values into every TIS register of every locality\n");
    for (int loc = 0; loc < TIS_LOCALITIES; loc++) {
        for (size_t i = 0; i < sizeof(tt_hostile_regs) / sizeof(tt_hostile_regs[0]);
             i++) {
            for (unsigned k = 0; k < 3; k++) {
                unsigned size = sizes[k];
                unsigned reg = tt_hostile_regs[i];

                if (reg + size > 0x1000) {
                    continue;
                }
                tis_write(&t->tis, loc, reg, size, tt_random(t));
                tis_read(&t->tis, loc, reg, size);
                writes++;
                reads++;
            }
        }
        /* Every byte offset of the register page once. */
        for (unsigned reg = 0; reg < 0x1000; reg += 1 + (tt_random(t) & 7)) {
            tis_write(&t->tis, loc, reg, 1, tt_random(t));
            writes++;
        }
    }
    for (unsigned i = 0; i < rounds; i++) {
        uint32_t x = tt_random(t);
        int loc = (int)(x % TIS_LOCALITIES);
        unsigned size = sizes[(x >> 4) % 3];
        unsigned reg = (x >> 8) & 0xfff & ~(size - 1);

        /* Bias towards the registers that drive the state machine. */
        if (x & 0x80000000u) {
            reg = tt_hostile_regs[(x >> 20) %
                                  (sizeof(tt_hostile_regs) / sizeof(tt_hostile_regs[0]))];
            if (reg + size > 0x1000) {
                size = 1;
            }
        }
        if (x & 0x40000000u) {
            tis_read(&t->tis, loc, reg, size);
            reads++;
        } else {
            tis_write(&t->tis, loc, reg, size, tt_random(t));
            writes++;
        }
    }
    plat_printf("# hostile: %u writes, %u reads done; recovering like a driver would\n",
                (unsigned)writes, (unsigned)reads);

    /* Recover: interrupts off everywhere, every locality relinquished and its
     * seized flag cleared, then locality 0 and a fresh command. */
    t->tis.locality = -1;
    t->tis.use_irq = false;
    for (int loc = TIS_LOCALITIES - 1; loc >= 0; loc--) {
        tis_write(&t->tis, loc, TIS_ACCESS, 1, TIS_ACCESS_ACTIVE);
        tis_write(&t->tis, loc, TIS_ACCESS, 1, TIS_ACCESS_SEIZED);
    }
    rc = -1;
    t->tpm.err[0] = 0;
    if (tis_request_locality(&t->tis, 0)) {
        tis_write(&t->tis, 0, TIS_INT_ENABLE, 4, 0);
        tis_write(&t->tis, 0, TIS_INT_STATUS, 4, 0xffffffff);
        tis_release_locality(&t->tis);
        tt_startup(t, false);
        rc = tpm2_get_random(&t->tpm, r, sizeof(r), &got);
    }
    plat_snprintf(why, sizeof(why), "%s", t->tpm.err[0] ? t->tpm.err : t->tis.err);
    tt_check(t, rc == 0 && got == sizeof(r),
             "after the storm a TPM2_GetRandom gets a valid response", why);
    return t->failures - before;
}
