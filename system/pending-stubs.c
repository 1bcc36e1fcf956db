/*
 * Weak fallbacks for entry points of parts that have not landed yet, each
 * failing with a clear message. This file goes away once all of them exist.
 *
 * Caution: these definitions live in the link_whole core library, so a weak
 * one here stops the linker from pulling the real definition out of the
 * block archive unless something else pulls in its object file. Remove a
 * fallback as soon as the real function is in the tree.
 */
#include "block/block.h"
#include "util/error.h"

static void not_built(GError **errp, const char *what)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "%s is not built yet in this tpmvm (its part has not landed)", what);
}

__attribute__((weak)) BlockDriverState *drive_new_from_string(const char *optstr,
                                                              GError **errp)
{
    not_built(errp, "the block layer (-drive)");
    return NULL;
}

__attribute__((weak)) BlockDriverState *blockdev_new_from_string(const char *optstr,
                                                                 GError **errp)
{
    not_built(errp, "the block layer (-blockdev)");
    return NULL;
}

__attribute__((weak)) void drive_close_all(void)
{
}
