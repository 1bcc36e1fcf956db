/*
 * The "tpm-tis" device: the TIS register logic (tpm_tis.c) mapped at
 * 0xFED40000 (0x5000 bytes, five localities) in the machine's physical
 * address space, with one ISA interrupt line.
 *
 *   -device tpm-tis,tpmdev=ID[,irq=N]     (irq 0-15, default 5)
 *
 * Only one TPM per VM: libtpms is one instance per process and the window
 * is fixed.
 */
#include <stddef.h>
#include <string.h>

#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "hw/core/memory.h"
#include "hw/core/vmstate.h"
#include "hw/tpm/tpm_frontend.h"
#include "hw/tpm/tpm_tis.h"
#include "util/error.h"
#include "util/log.h"

typedef struct TPMTISISA {
    DeviceState parent;
    char *tpmdev;
    uint32_t irq;
    bool mapped;
    MemoryRegion mmio;
    TPMTISState state;
} TPMTISISA;

/* The realized device, if any; main thread only. */
static TPMTISISA *tpm_tis_isa_instance;

static bool tpm_tis_isa_realize(DeviceState *dev, GError **errp)
{
    TPMTISISA *s = (TPMTISISA *)dev;
    TPMBackend *be;

    if (tpm_tis_isa_instance) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "-device tpm-tis: a VM can have only one TPM device; remove the second "
            "-device tpm-tis");
        return false;
    }
    if (!s->tpmdev || !s->tpmdev[0]) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: Parameter 'tpmdev' is missing; give the id of a "
                    "-tpmdev backend (tpmdev=ID)");
        return false;
    }
    be = tpm_backend_find(s->tpmdev);
    if (!be) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: no TPM backend with id '%s'; define it with "
                    "-tpmdev TYPE,id=%s",
                    s->tpmdev, s->tpmdev);
        return false;
    }
    if (be->in_use) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: TPM backend '%s' is already used by another device",
                    s->tpmdev);
        return false;
    }
    if (s->irq > 15) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: irq must be an ISA interrupt 0-15, not %u", s->irq);
        return false;
    }
    if (!current_machine || !current_machine->sysmem) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: the machine has no memory bus; use -machine pc");
        return false;
    }
    if (!current_machine->gsi || (int)s->irq >= current_machine->num_gsi) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: the machine has no interrupt line %u", s->irq);
        return false;
    }
    if (address_space_lookup(current_machine->sysmem, TPM_TIS_ADDR_BASE) ||
        address_space_lookup(current_machine->sysmem,
                             TPM_TIS_ADDR_BASE + TPM_TIS_ADDR_SIZE - 1)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-device tpm-tis: the TPM window at 0x%llx is already in use",
                    (unsigned long long)TPM_TIS_ADDR_BASE);
        return false;
    }

    tpm_tis_init(&s->state, be, &current_machine->gsi[s->irq], s->irq);
    if (!tpm_tis_reset(&s->state, errp)) {
        g_prefix_error(errp, "-device tpm-tis: ");
        return false;
    }
    s->mmio = (MemoryRegion){
        .name = "tpm-tis",
        .base = TPM_TIS_ADDR_BASE,
        .size = TPM_TIS_ADDR_SIZE,
        .ops = &tpm_tis_mmio_ops,
        .opaque = &s->state,
    };
    address_space_add(current_machine->sysmem, &s->mmio);
    s->mapped = true;
    /* The device registry registers tpm_tis_isa_vmstate with the device;
     * the frontend registers the backend's state too, so it is saved with it. */
    if (be->klass->vmsd) {
        vmstate_register(be->klass->vmsd->name, 0, be->klass->vmsd, be);
    }
    be->in_use = true;
    tpm_tis_isa_instance = s;
    return true;
}

static void tpm_tis_isa_reset(DeviceState *dev)
{
    TPMTISISA *s = (TPMTISISA *)dev;
    GError *err = NULL;

    if (!s->mapped) {
        return;
    }
    if (!tpm_tis_reset(&s->state, &err)) {
        /* The TPM then reads as 0 until a later reset succeeds. */
        g_prefix_error(&err, "tpm-tis: reset: ");
        error_report_err(err);
    }
}

static void tpm_tis_isa_unrealize(DeviceState *dev)
{
    TPMTISISA *s = (TPMTISISA *)dev;

    if (!s->mapped) {
        return;
    }
    tpm_backend_finish_sync(s->state.be);
    address_space_del(current_machine->sysmem, &s->mmio);
    if (s->state.be->klass->vmsd) {
        vmstate_unregister(s->state.be->klass->vmsd, s->state.be);
    }
    s->state.be->in_use = false;
    s->mapped = false;
    if (tpm_tis_isa_instance == s) {
        tpm_tis_isa_instance = NULL;
    }
}

/* The registry passes the device; the register logic wants its state. */
static void *isa_state(void *opaque)
{
    return &((TPMTISISA *)opaque)->state;
}

static bool tpm_tis_isa_pre_save(void *opaque, GError **errp)
{
    return tpm_tis_vmstate.pre_save(isa_state(opaque), errp);
}

static bool tpm_tis_isa_save(void *opaque, GByteArray *out, GError **errp)
{
    return tpm_tis_vmstate.save(isa_state(opaque), out, errp);
}

static bool tpm_tis_isa_check(void *opaque, const uint8_t *buf, size_t len,
                              int version_id, GError **errp)
{
    return tpm_tis_vmstate.check(isa_state(opaque), buf, len, version_id, errp);
}

static bool tpm_tis_isa_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                             GError **errp)
{
    return tpm_tis_vmstate.load(isa_state(opaque), buf, len, version_id, errp);
}

static bool tpm_tis_isa_post_load(void *opaque, int version_id, GError **errp)
{
    return tpm_tis_vmstate.post_load(isa_state(opaque), version_id, errp);
}

static const VMStateDescription tpm_tis_isa_vmstate = {
    .name = "tpm-tis",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = tpm_tis_isa_pre_save,
    .save = tpm_tis_isa_save,
    .check = tpm_tis_isa_check,
    .load = tpm_tis_isa_load,
    .post_load = tpm_tis_isa_post_load,
};

static const Property tpm_tis_isa_props[] = {
    {"tpmdev", PROP_STRING, offsetof(TPMTISISA, tpmdev), NULL,
     "id of the -tpmdev backend (required)"},
    {"irq", PROP_UINT32, offsetof(TPMTISISA, irq), "5", "ISA interrupt number, 0-15"},
    {NULL},
};

static const DeviceClass tpm_tis_isa_class = {
    .name = "tpm-tis",
    .desc = "TPM TIS interface at 0xFED40000 (TPM 1.2 / 2.0)",
    .instance_size = sizeof(TPMTISISA),
    .props = tpm_tis_isa_props,
    .realize = tpm_tis_isa_realize,
    .reset = tpm_tis_isa_reset,
    .unrealize = tpm_tis_isa_unrealize,
    .vmsd = &tpm_tis_isa_vmstate,
    .user_creatable = true,
    .singleton = true,
};
DEVICE_TYPE_REGISTER(tpm_tis_isa_class)

void tpm_frontend_foreach(void (*fn)(const TPMFrontendInfo *info, void *opaque),
                          void *opaque)
{
    if (tpm_tis_isa_instance) {
        TPMFrontendInfo info = {
            .model = tpm_tis_isa_class.name,
            .dev_id = tpm_tis_isa_instance->parent.id,
            .be = tpm_tis_isa_instance->state.be,
        };
        fn(&info, opaque);
    }
}

const char *const *tpm_frontend_models(void)
{
    static const char *const models[] = {"tpm-tis", NULL};

    return models;
}
