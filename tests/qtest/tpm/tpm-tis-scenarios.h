/*
 * TIS behaviour tests written once and run two ways: in-process against the
 * register logic (tests/unit/tpm/test-tis-regs.c) and through a tpmvm process
 * over the qtest protocol (tests/qtest/tpm/tpm-tis-test.c). Each program
 * provides tis_harness_new()/tis_harness_free() for its way of reaching the
 * device; the device always sits on the "test" TPM backend.
 */
#ifndef TPM_TIS_SCENARIOS_H
#define TPM_TIS_SCENARIOS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct TisHarness TisHarness;

struct TisHarness {
    /* addr is relative to 0xFED40000 */
    uint64_t (*read)(TisHarness *h, uint64_t addr, unsigned size);
    void (*write)(TisHarness *h, uint64_t addr, uint64_t val, unsigned size);
    /* Level of the TPM's interrupt line. */
    bool (*irq)(TisHarness *h);
    /* Let a little time pass so that completions can arrive. */
    void (*idle)(TisHarness *h);
    /* The last command the backend received (NULL if none). */
    GBytes *(*last_command)(TisHarness *h);
    /* System reset. */
    void (*reset)(TisHarness *h);
    /* Save the device state aside / load it back; NULL if not possible. */
    bool (*save)(TisHarness *h);
    bool (*load)(TisHarness *h);
    unsigned irq_num;
};

/*
 * A fresh device on "-tpmdev test,id=tpm0,<backend_opts>" (backend_opts may
 * be NULL) whose script holds `script` (NULL for none).
 */
TisHarness *tis_harness_new(const char *backend_opts, const char *script);
void tis_harness_free(TisHarness *h);

/* Register every scenario under /tpm-tis/... */
void tis_scenarios_add(void);

#endif
