/*
 * Guest RAM as a vmstate section ("ram", version 1; docs/snapshots.md).
 *
 * An idle guest's RAM is mostly zero, and untouched RAM costs no host memory
 * (it is reserved lazily), so the section stores a bitmap of the 4 KiB pages
 * that hold anything, followed by those pages only:
 *
 *   u64 ram_size (big-endian), u32 page_size (4096),
 *   bitmap: ceil(pages / 8) bytes, page i -> byte i / 8, bit i % 8 (LSB first),
 *   the set pages' contents in ascending page order.
 *
 * Loading checks the whole payload first (phase 1: sizes, bitmap padding,
 * exact length) and only then copies pages; a page that is zero in the
 * snapshot is cleared only if it is not zero already, so loading into a
 * fresh VM does not touch (and allocate) its untouched RAM.
 */
#include "system/snapshot.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hw/core/vmstate.h"
#include "util/byteorder.h"
#include "util/error.h"

#define RAM_PAGE_SIZE 4096u
#define RAM_HEADER_SIZE 12u

typedef struct RamSection {
    uint8_t *ram;
    uint64_t size;
    int pagemap_fd; /* /proc/self/pagemap, or -1: every page may hold data */
} RamSection;

static uint64_t ram_pages(uint64_t size)
{
    return (size + RAM_PAGE_SIZE - 1) / RAM_PAGE_SIZE;
}

/*
 * Which pages the guest (or anyone) ever wrote. RAM is a private anonymous
 * mapping: a page that is neither present nor swapped out in the process's
 * page tables was never written and reads as zero. Reading it to find that
 * out would map the shared zero page (and make it "present"), and scanning
 * 128 MiB of such pages costs more than the rest of a snapshot; the kernel's
 * pagemap answers for 4096 pages in one read. Entry bits 63 (present) and
 * 62 (swapped) are readable without privileges (Linux
 * Documentation/admin-guide/mm/pagemap.rst).
 */
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define PAGEMAP_CHUNK 4096u

typedef struct RamScan {
    const RamSection *rs;
    uint64_t first; /* first page whose entry is in `map` */
    uint64_t count; /* entries in `map`; 0: nothing known */
    uint64_t map[PAGEMAP_CHUNK];
} RamScan;

static RamScan *ram_scan_new(const RamSection *rs)
{
    RamScan *sc = g_new(RamScan, 1);

    sc->rs = rs;
    sc->first = sc->count = 0;
    return sc;
}

/* False only if page `i` is known never to have been written. */
static bool ram_page_maybe_used(RamScan *sc, uint64_t i)
{
    const RamSection *rs = sc->rs;

    if (rs->pagemap_fd < 0) {
        return true;
    }
    if (i < sc->first || i >= sc->first + sc->count) {
        uint64_t vpage = (uintptr_t)rs->ram / RAM_PAGE_SIZE + i;
        uint64_t n = MIN((uint64_t)PAGEMAP_CHUNK, ram_pages(rs->size) - i);
        ssize_t got = pread(rs->pagemap_fd, sc->map, n * 8, (off_t)(vpage * 8));

        sc->first = i;
        sc->count = got > 0 ? (uint64_t)got / 8 : 0;
        if (sc->count == 0) {
            return true;
        }
    }
    return (sc->map[i - sc->first] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0;
}

static RamSection ram_section = {.pagemap_fd = -1}; /* main thread only */
static bool ram_section_registered;
static bool ram_section_skip; /* save a "RAM unchanged" marker (page_size 0) */

/* True if len bytes at p are all zero (len a multiple of 64). */
static bool ram_page_is_zero(const uint8_t *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)p;

    for (size_t i = 0; i < len / 8; i += 8) {
        /* OR a cache line at a time: the compiler vectorises this. */
        uint64_t acc = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] |
                       w[i + 6] | w[i + 7];
        if (acc) {
            return false;
        }
    }
    return true;
}

/* True if the len bytes at p (a page, or the short last page) are all zero. */
static bool ram_range_is_zero(const uint8_t *p, size_t len)
{
    return len == RAM_PAGE_SIZE ? ram_page_is_zero(p, len)
                                : p[0] == 0 && !memcmp(p, p + 1, len - 1);
}

/* Length of page `i` (the last page may be short if RAM is not page-aligned). */
static size_t ram_page_len(const RamSection *rs, uint64_t i)
{
    uint64_t start = i * RAM_PAGE_SIZE;

    return (size_t)MIN((uint64_t)RAM_PAGE_SIZE, rs->size - start);
}

static bool ram_save(void *opaque, GByteArray *out, GError **errp)
{
    RamSection *rs = opaque;
    uint64_t pages = ram_pages(rs->size);
    size_t bitmap_len = (size_t)((pages + 7) / 8);
    g_autofree RamScan *scan = NULL;
    guint bitmap_pos;

    append_be(out, rs->size, 8);
    append_be(out, ram_section_skip ? 0 : RAM_PAGE_SIZE, 4);
    if (ram_section_skip) {
        return true;
    }
    bitmap_pos = out->len;
    g_byte_array_set_size(out, out->len + (guint)bitmap_len);
    memset(out->data + bitmap_pos, 0, bitmap_len);
    scan = ram_scan_new(rs);
    for (uint64_t i = 0; i < pages; i++) {
        const uint8_t *page = rs->ram + i * RAM_PAGE_SIZE;
        size_t len = ram_page_len(rs, i);

        if (ram_page_maybe_used(scan, i) && !ram_range_is_zero(page, len)) {
            /* out->data may move as pages are appended: index, never cache it */
            out->data[bitmap_pos + i / 8] |= (uint8_t)(1u << (i % 8));
            g_byte_array_append(out, page, (guint)len);
        }
    }
    return true;
}

/* Phase 1: the payload must describe exactly this machine's RAM. */
static bool ram_parse(const RamSection *rs, const uint8_t *buf, size_t len,
                      const uint8_t **bitmap, GError **errp)
{
    uint64_t size, pages, bitmap_len, set = 0, expected;
    uint32_t page_size;

    if (len < RAM_HEADER_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "RAM state is truncated (%zu bytes, the header alone is %u)", len,
                    RAM_HEADER_SIZE);
        return false;
    }
    size = be_at(buf, 8);
    page_size = (uint32_t)be_at(buf + 8, 4);
    if (size != rs->size) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "the snapshot has %" G_GUINT64_FORMAT
                    " bytes of RAM but this VM has %" G_GUINT64_FORMAT
                    "; start it with the same -m as when the snapshot was taken",
                    size, rs->size);
        return false;
    }
    if (page_size == 0 && len == RAM_HEADER_SIZE) {
        *bitmap = NULL; /* the marker: leave RAM as it is */
        return true;
    }
    if (page_size != RAM_PAGE_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "RAM state uses %u-byte pages; this tpmvm reads %u-byte pages",
                    page_size, RAM_PAGE_SIZE);
        return false;
    }
    pages = ram_pages(size);
    bitmap_len = (pages + 7) / 8;
    if (len - RAM_HEADER_SIZE < bitmap_len) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "RAM state is truncated inside its page bitmap");
        return false;
    }
    *bitmap = buf + RAM_HEADER_SIZE;
    for (uint64_t i = 0; i < bitmap_len; i++) {
        set += (uint64_t)__builtin_popcount((*bitmap)[i]);
    }
    if (pages % 8 && ((*bitmap)[bitmap_len - 1] >> (pages % 8))) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "RAM page bitmap marks pages beyond the end of RAM");
        return false;
    }
    /* Every set page is full-size except possibly the last page of RAM. */
    expected = set * RAM_PAGE_SIZE;
    if (set && size % RAM_PAGE_SIZE &&
        ((*bitmap)[(pages - 1) / 8] & (1u << ((pages - 1) % 8)))) {
        expected -= RAM_PAGE_SIZE - size % RAM_PAGE_SIZE;
    }
    if (len - RAM_HEADER_SIZE - bitmap_len != expected) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "RAM state holds %" G_GUINT64_FORMAT
                    " bytes of page data but its bitmap "
                    "announces %" G_GUINT64_FORMAT,
                    (uint64_t)(len - RAM_HEADER_SIZE - bitmap_len), expected);
        return false;
    }
    return true;
}

static bool ram_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                      GError **errp)
{
    const uint8_t *bitmap;

    return ram_parse(opaque, buf, len, &bitmap, errp);
}

static bool ram_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                     GError **errp)
{
    RamSection *rs = opaque;
    const uint8_t *bitmap, *data;
    uint64_t pages = ram_pages(rs->size);
    g_autofree RamScan *scan = NULL;

    if (!ram_parse(rs, buf, len, &bitmap, errp)) {
        return false;
    }
    if (!bitmap) {
        return true;
    }
    data = bitmap + (pages + 7) / 8;
    scan = ram_scan_new(rs);
    for (uint64_t i = 0; i < pages; i++) {
        uint8_t *page = rs->ram + i * RAM_PAGE_SIZE;
        size_t plen = ram_page_len(rs, i);

        if (bitmap[i / 8] & (1u << (i % 8))) {
            memcpy(page, data, plen);
            data += plen;
        } else if (ram_page_maybe_used(scan, i) && !ram_range_is_zero(page, plen)) {
            memset(page, 0, plen);
        }
    }
    return true;
}

static const VMStateDescription ram_vmstate = {
    .name = "ram",
    .version_id = 1,
    .minimum_version_id = 1,
    .save = ram_save,
    .check = ram_check,
    .load = ram_load,
};

void ram_vmstate_register(uint8_t *ram, uint64_t size)
{
    ram_vmstate_unregister();
    if (!ram || !size) {
        return;
    }
    ram_section.ram = ram;
    ram_section.size = size;
    /* Opened now: -chroot and -sandbox come later. Without it every page is read. */
    if (sysconf(_SC_PAGESIZE) == RAM_PAGE_SIZE && (uintptr_t)ram % RAM_PAGE_SIZE == 0) {
        ram_section.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    }
    vmstate_register("ram", 0, &ram_vmstate, &ram_section);
    ram_section_registered = true;
}

void ram_vmstate_unregister(void)
{
    if (ram_section_registered) {
        vmstate_unregister(&ram_vmstate, &ram_section);
        ram_section_registered = false;
    }
    if (ram_section.pagemap_fd >= 0) {
        close(ram_section.pagemap_fd);
        ram_section.pagemap_fd = -1;
    }
}

void ram_vmstate_set_skip(bool skip)
{
    ram_section_skip = skip;
}
