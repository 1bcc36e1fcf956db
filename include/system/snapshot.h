/*
 * VM snapshots (savevm / loadvm / delvm): the whole VM - RAM, devices and the
 * TPM with its NVRAM - saved as an internal snapshot of every qcow2 drive,
 * with the device state in the qcow2 vmstate area of one of them.
 * docs/snapshots.md describes the flow and the formats.
 *
 * Drive selection: `devices` NULL means every drive of the VM (HMP savevm,
 * loadvm, delvm and -loadvm); every one of them must then be a writable
 * qcow2 drive. Otherwise `devices` is a NULL-terminated list of drive ids or
 * node names (QMP "devices"); drives not listed are left alone. `vmstate`
 * names the drive whose vmstate area holds the device state; NULL picks the
 * first selected drive when saving, and the drive whose snapshot has a
 * vmstate when loading.
 *
 * All functions run in the main thread with the big lock held.
 */
#ifndef SYSTEM_SNAPSHOT_H
#define SYSTEM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/*
 * Stop the VM, drain the TPM, save the device state and create snapshot
 * `tag` on every selected drive (all or none), then resume it if it ran.
 * With `overwrite`, a snapshot `tag` present on every selected drive is
 * replaced (HMP savevm); without it an existing tag is an error (QMP).
 */
bool snapshot_save(const char *tag, const char *vmstate, const char *const *devices,
                   bool overwrite, GError **errp);

/*
 * Revert every selected drive to snapshot `tag` (a name, or an id that is
 * the same on every drive) and load its device state. On failure the VM,
 * its TPM and the drives are left as they were before the call.
 * A snapshot without device state is refused (it can only be applied at
 * start-up, see snapshot_load_at_startup).
 */
bool snapshot_load(const char *tag, const char *vmstate, const char *const *devices,
                   GError **errp);

/* Delete snapshot `tag` from every selected drive that has it (at least one). */
bool snapshot_delete(const char *tag, const char *const *devices, GError **errp);

/*
 * -loadvm TAG: like snapshot_load before the VM first runs; a snapshot
 * without device state (made offline with tpmvm-img / qemu-img snapshot -c)
 * reverts the drives and power-cycles the TPM: permanent state from the
 * snapshot, no volatile state.
 */
bool snapshot_load_at_startup(const char *tag, GError **errp);

/*
 * Start-up hook (system_add_startup_hook, from vl.c): once the machine and
 * its devices exist, guest RAM joins the vmstate and -loadvm TAG is loaded.
 */
bool snapshot_startup_hook(void *opaque, GError **errp);

/* HMP "info snapshots" (QEMU's layout). */
bool snapshot_info(GString *out, GError **errp);

/* A byte count as QEMU's tools print it: "0 B", "378 KiB", "1.5 MiB". */
char *snapshot_size_to_str(uint64_t bytes);

/* The "ram" vmstate section over the machine's RAM (size 0: none). */
void ram_vmstate_register(uint8_t *ram, uint64_t size);
void ram_vmstate_unregister(void);
/*
 * While set, the "ram" section saves a marker instead of the pages, and
 * loading that marker leaves RAM as it is (loadvm's in-memory backup of the
 * other devices, for putting them back if loading fails).
 */
void ram_vmstate_set_skip(bool skip);

#endif
