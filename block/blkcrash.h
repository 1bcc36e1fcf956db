/*
 * blkcrash: a test double for power loss (tests only, not for users).
 *
 * A filter node above "file" that passes I/O through and remembers every
 * write since the last flush. At request number `crash-after` (writes and
 * flushes both count) the power is "lost": that request does not happen, the
 * unflushed writes are undone, a subset chosen by `seed` is put
 * back (what a disk may have written before losing power), and from then on
 * writes and flushes are silently dropped, as if the machine had died.
 *
 *   driver=qcow2,file.driver=blkcrash,file.crash-after=N,file.seed=S,
 *   file.file.driver=file,file.file.filename=PATH
 */
#ifndef BLOCK_BLKCRASH_H
#define BLOCK_BLKCRASH_H

#include "block/block.h"

/* The blkcrash node at or below bs, or NULL. */
BlockDriverState *blkcrash_find(BlockDriverState *bs);
/* True once the simulated power loss has happened. */
bool blkcrash_is_dead(BlockDriverState *bs);
/* Requests (writes and flushes) that reached the node so far: crash points. */
uint64_t blkcrash_write_count(BlockDriverState *bs);
uint64_t blkcrash_flush_count(BlockDriverState *bs);

#endif
