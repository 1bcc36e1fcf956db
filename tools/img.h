/*
 * What the tpmvm-img commands share: common options, messages, opening
 * images, sizes as qemu-img prints them, and the commands themselves.
 */
#ifndef TOOLS_IMG_H
#define TOOLS_IMG_H

#include <getopt.h>
#include <glib.h>

#include "block/block_int.h"

#define PROG "tpmvm-img"

enum {
    OPT_OBJECT = 256,
    OPT_IMAGE_OPTS,
    OPT_TARGET_IMAGE_OPTS,
    OPT_OUTPUT,
    OPT_SHRINK,
    OPT_FORCE,
    OPT_PREALLOCATION,
};

/* Options shared by most commands. */
typedef struct ImgCommon {
    const char *fmt;
    bool image_opts;
    bool force_share;
    bool quiet;
    const char *output;
} ImgCommon;

extern const struct option common_long_opts[];

/* "tpmvm-img: message" on stderr. */
void img_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* --object secret,...: define a secret; false (reported) on error. */
bool img_add_object(const char *arg);
/*
 * An option every command treats alike (-U, -q, --output, --image-opts,
 * --object, -h) or an unknown one; getopt already refused the options a
 * command does not take. Returns -1 to go on, else the exit status.
 */
int img_common_option(int opt, ImgCommon *c);
char *size_to_str(uint64_t val);
/* Open filename (or --image-opts string) with the common options. */
BlockDriverState *img_open(const char *filename, const ImgCommon *c, int flags,
                           GError **errp);
bool output_is_json(const ImgCommon *c, bool *json);
void usage(void);
/* The snapshot table as qemu-img prints it (info, snapshot -l). */
void print_snapshot_table(GString *out, BlockSnapshotInfo *list, int n);
void snapshot_list_free(BlockSnapshotInfo *list, int n);

int img_info(int argc, char **argv);
int img_check(int argc, char **argv);

#endif
