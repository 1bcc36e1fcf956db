/*
 * Creating qcow2 images (v2/v3, any cluster size and refcount width, LUKS)
 * and amending LUKS key slots.
 *
 * Layout of a new image: cluster 0 header, 1 refcount table, 2 refcount
 * block, then the L1 table and the LUKS area allocated through the normal
 * allocator (so that every refcount is right for any cluster size).
 */
#include <string.h>

#include "crypto/secret.h"
#include "qcow2.h"
#include "util/error.h"

/* Names QEMU 7.2 writes into the feature name table (qcow2 spec). */
static const struct {
    uint8_t type, bit;
    const char *name;
} feature_table[] = {
    {0, 0, "dirty bit"},
    {0, 1, "corrupt bit"},
    {0, 2, "external data file"},
    {0, 3, "compression type"},
    {0, 4, "extended L2 entries"},
    {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},
    {2, 1, "raw external data"},
};

static uint64_t header_append_ext(uint8_t *buf, uint64_t off, uint64_t limit,
                                  uint32_t type, const void *data, uint32_t len)
{
    uint64_t padded = ((uint64_t)len + 7) & ~7ull;

    if (off == UINT64_MAX || off + 8 + padded > limit) {
        return UINT64_MAX;
    }
    put_be32(buf + off, type);
    put_be32(buf + off + 4, len);
    memset(buf + off + 8, 0, padded);
    memcpy(buf + off + 8, data, len);
    return off + 8 + padded;
}

static uint64_t unknown_ext_bytes(const Qcow2State *s)
{
    uint64_t n = 0;

    for (guint i = 0; s->unknown_exts && i < s->unknown_exts->len; i++) {
        Qcow2UnknownExt *u = g_ptr_array_index(s->unknown_exts, i);
        n += 8 + (((uint64_t)u->len + 7) & ~7ull);
    }
    return n;
}

/* Build the header with all extensions into buf (cluster_size bytes). */
static bool header_build(Qcow2State *s, uint8_t *buf, uint64_t *used, GError **errp)
{
    uint32_t hlen = s->version >= 3 ? QCOW2_WRITE_HEADER_LENGTH : QCOW2_V2_HEADER_LENGTH;
    uint64_t off = hlen, limit = s->cluster_size;

    memset(buf, 0, s->cluster_size);
    put_be32(buf, QCOW2_MAGIC);
    put_be32(buf + 4, s->version);
    put_be32(buf + 20, s->cluster_bits);
    put_be64(buf + 24, s->size);
    put_be32(buf + 32, s->crypt_method);
    put_be32(buf + 36, s->l1_size);
    put_be64(buf + 40, s->l1_table_offset);
    put_be64(buf + 48, s->refcount_table_offset);
    put_be32(buf + 56, s->refcount_table_clusters);
    put_be32(buf + 60, s->nb_snapshots);
    put_be64(buf + 64, s->snapshots_offset);
    if (s->version >= 3) {
        put_be64(buf + 72, s->incompatible);
        put_be64(buf + 80, s->compatible);
        put_be64(buf + 88, s->autoclear);
        put_be32(buf + 96, s->refcount_order);
        put_be32(buf + 100, hlen);
    }
    if (s->has_crypto_ext) {
        uint8_t fde[16];
        put_be64(fde, s->crypto_header_offset);
        put_be64(fde + 8, s->crypto_header_length);
        off = header_append_ext(buf, off, limit, QCOW2_EXT_CRYPTO, fde, 16);
    }
    /* The feature table is optional: left out when cluster 0 is too small (QEMU). */
    if (s->version >= 3 &&
        off + 8 + G_N_ELEMENTS(feature_table) * 48 + unknown_ext_bytes(s) + 8 <= limit) {
        uint8_t table[G_N_ELEMENTS(feature_table) * 48] = {0};
        for (size_t i = 0; i < G_N_ELEMENTS(feature_table); i++) {
            table[i * 48] = feature_table[i].type;
            table[i * 48 + 1] = feature_table[i].bit;
            memcpy(table + i * 48 + 2, feature_table[i].name,
                   strlen(feature_table[i].name));
        }
        off = header_append_ext(buf, off, limit, QCOW2_EXT_FEATURE_TABLE, table,
                                sizeof(table));
    }
    for (guint i = 0; s->unknown_exts && i < s->unknown_exts->len; i++) {
        Qcow2UnknownExt *u = g_ptr_array_index(s->unknown_exts, i);
        off = header_append_ext(buf, off, limit, u->type, u->data, u->len);
    }
    if (off == UINT64_MAX || off + 8 > limit) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Header extensions of '%s' do not fit into one cluster",
                    s->bs ? s->bs->filename : "image");
        return false;
    }
    *used = off + 8; /* end-of-extensions marker, already zero */
    return true;
}

/* Rewrite the whole header and its extensions (create, amend). */
static bool qcow2_rewrite_header(Qcow2State *s, GError **errp)
{
    g_autofree uint8_t *buf = g_malloc(s->cluster_size);
    uint64_t used;

    return header_build(s, buf, &used, errp) && qcow2_flush_metadata(s, errp) &&
           qcow2_write_header_field(s, 0, buf, used, errp);
}

typedef struct CreateOpts {
    uint64_t cluster_size;
    uint64_t refcount_bits;
    uint32_t version;
    const char *encrypt_format;
    const char *key_secret;
    LuksCreateOpts luks;
} CreateOpts;

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static bool create_parse_opts(KeyVal *opts, KeyVal *enc, CreateOpts *o, GError **errp)
{
    const char *compat = keyval_get(opts, "compat");
    const char *prealloc = keyval_get(opts, "preallocation");
    const char *ctype = keyval_get(opts, "compression_type");
    bool lazy, extl2, encryption;

    if (!keyval_get_size(opts, "cluster_size", 65536, &o->cluster_size, errp) ||
        !keyval_get_uint(opts, "refcount_bits", 16, &o->refcount_bits, errp) ||
        !keyval_get_bool(opts, "lazy_refcounts", false, &lazy, errp) ||
        !keyval_get_bool(opts, "extended_l2", false, &extl2, errp) ||
        !keyval_get_bool(opts, "encryption", false, &encryption, errp)) {
        return false;
    }
    if (!is_pow2(o->cluster_size) || o->cluster_size < 512 ||
        o->cluster_size > (2u << 20)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Cluster size must be a power of two between 512 and 2048k");
        return false;
    }
    if (!is_pow2(o->refcount_bits) || o->refcount_bits > 64) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Refcount width must be a power of two and may not exceed 64 bits");
        return false;
    }
    if (!compat || !strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
        o->version = 3;
    } else if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
        o->version = 2;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid compatibility level: '%s'", compat);
        return false;
    }
    if (o->version == 2 && o->refcount_bits != 16) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Different refcount widths than 16 bits require compatibility level "
                    "1.1 or above (use compat=1.1 or greater)");
        return false;
    }
    if (lazy) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "lazy_refcounts=on is not supported (metadata is always written in "
                    "crash-safe order)");
        return false;
    }
    if (extl2) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "extended_l2=on is not supported");
        return false;
    }
    if (prealloc && strcmp(prealloc, "off")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unsupported preallocation mode '%s' (only 'off')", prealloc);
        return false;
    }
    if (ctype && strcmp(ctype, "zlib")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unsupported compression type '%s' (only 'zlib')", ctype);
        return false;
    }
    if (keyval_has(opts, "backing_file") || keyval_has(opts, "backing_fmt")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Backing files are not supported");
        return false;
    }

    o->encrypt_format = keyval_get(enc, "format");
    o->key_secret = keyval_get(enc, "key-secret");
    o->luks.cipher_alg = keyval_get(enc, "cipher-alg");
    o->luks.cipher_mode = keyval_get(enc, "cipher-mode");
    o->luks.ivgen_alg = keyval_get(enc, "ivgen-alg");
    o->luks.hash_alg = keyval_get(enc, "hash-alg");
    if (keyval_has(enc, "ivgen-hash-alg")) {
        keyval_get(enc, "ivgen-hash-alg"); /* only used by essiv, which is refused */
    }
    if (!keyval_get_uint(enc, "iter-time", 2000, &o->luks.iter_time_ms, errp)) {
        return false;
    }
    if (encryption && !o->encrypt_format) {
        o->encrypt_format = "aes";
    }
    if (o->encrypt_format && !strcmp(o->encrypt_format, "aes")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Creating AES-CBC encrypted qcow2 images (encrypt.format=aes) is not "
                    "supported because the format is insecure; use encrypt.format=luks");
        return false;
    }
    if (o->encrypt_format && strcmp(o->encrypt_format, "luks")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid parameter encrypt.format=%s (use luks)", o->encrypt_format);
        return false;
    }
    if (!o->encrypt_format && keyval_keys(enc)[0]) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "encrypt.* options need encrypt.format=luks");
        return false;
    }
    if (o->encrypt_format && !o->key_secret) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter 'encrypt.key-secret' is required for cipher");
        return false;
    }
    return keyval_check_unused(enc, "encrypt", errp);
}

/* Clusters 0..2: header, refcount table, one refcount block. */
static bool create_write_skeleton(const char *filename, const CreateOpts *o,
                                  GError **errp)
{
    g_autoptr(KeyVal) fopts = keyval_new();
    Qcow2State tmp = {0};
    BlockDriverState *file;
    g_autofree uint8_t *buf = NULL;
    uint64_t cs = o->cluster_size, used;
    bool ok;

    tmp.version = o->version;
    tmp.cluster_bits = g_bit_storage(cs) - 1;
    tmp.cluster_size = cs;
    tmp.refcount_order = g_bit_storage(o->refcount_bits) - 1;
    tmp.refcount_bits = o->refcount_bits;
    tmp.refcount_table_offset = cs;
    tmp.refcount_table_clusters = 1;
    buf = g_malloc0(3 * cs);
    if (!header_build(&tmp, buf, &used, errp)) {
        return false;
    }
    put_be64(buf + cs, 2 * cs);
    for (int i = 0; i < 3; i++) {
        qcow2_set_refcount_in_block(&tmp, buf + 2 * cs, i, 1);
    }
    keyval_set(fopts, "driver", "file");
    file = bdrv_open(filename, fopts, BDRV_O_RDWR | BDRV_O_CREATE, errp);
    if (!file) {
        return false;
    }
    ok = bdrv_pwrite(file, 0, buf, 3 * cs, errp) && bdrv_flush(file, errp);
    bdrv_unref(file);
    return ok;
}

static bool create_zero_clusters(Qcow2State *s, uint64_t off, uint64_t bytes,
                                 GError **errp)
{
    g_autofree uint8_t *zero =
        g_malloc0(qcow2_size_to_clusters(s, bytes) << s->cluster_bits);

    s->unsynced = true;
    return bdrv_pwrite(s->file, off, zero,
                       qcow2_size_to_clusters(s, bytes) << s->cluster_bits, errp);
}

bool qcow2_create(const char *filename, uint64_t size, KeyVal *opts, GError **errp)
{
    g_autoptr(KeyVal) own = NULL;
    g_autoptr(KeyVal) enc = NULL;
    g_autoptr(KeyVal) qopts = keyval_new();
    CreateOpts o = {0};
    BlockDriverState *bs;
    Qcow2State *s;
    bool ok = false;

    if (!opts) {
        opts = own = keyval_new();
    }
    enc = keyval_extract_prefix(opts, "encrypt.");
    if (!create_parse_opts(opts, enc, &o, errp) ||
        !keyval_check_unused(opts, "qcow2", errp)) {
        return false;
    }
    if (size % QCOW2_SECTOR) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Image size must be a multiple of %u bytes", QCOW2_SECTOR);
        return false;
    }
    if (!create_write_skeleton(filename, &o, errp)) {
        return false;
    }
    keyval_set(qopts, "driver", "qcow2");
    bs = bdrv_open(filename, qopts, BDRV_O_RDWR, errp);
    if (!bs) {
        return false;
    }
    s = bs->opaque;

    /* The L1 table, sized for the disk. */
    {
        uint64_t l1 = qcow2_size_to_l1(s, size);
        if (l1 > qcow2_max_l1_entries() || size > INT64_MAX) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Image size %" G_GUINT64_FORMAT
                        " is too big for cluster size %" G_GUINT64_FORMAT,
                        size, s->cluster_size);
            goto out;
        }
        if (l1) {
            uint64_t off;
            if (!qcow2_alloc_clusters(s, l1 * 8, &off, errp) ||
                !create_zero_clusters(s, off, l1 * 8, errp)) {
                goto out;
            }
            g_free(s->l1_table);
            s->l1_table = g_new0(uint64_t, l1);
            s->l1_size = l1;
            s->l1_table_offset = off;
        }
    }

    /* The LUKS area: refcounted like metadata, zero-filled to whole clusters. */
    if (o.encrypt_format) {
        uint64_t len = luks_area_size(&o.luks), off;
        uint8_t *pw;
        size_t pw_len;
        LuksIO io;
        LuksBlock *luks;

        if (len == 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Unsupported encryption options (cipher-alg, cipher-mode, "
                        "ivgen-alg or hash-alg); use aes-256/aes-128, xts, plain64, "
                        "sha256/sha1");
            goto out;
        }
        if (!secret_lookup(o.key_secret, &pw, &pw_len, errp)) {
            goto out;
        }
        if (!qcow2_alloc_clusters(s, len, &off, errp) ||
            !create_zero_clusters(s, off, len, errp)) {
            secret_bytes_free(pw, pw_len);
            goto out;
        }
        s->crypto_header_offset = off;
        s->crypto_header_length = len;
        s->has_crypto_ext = true;
        io = qcow2_luks_io(s);
        luks = luks_create(&o.luks, pw, pw_len, &io, errp);
        secret_bytes_free(pw, pw_len);
        if (!luks) {
            goto out;
        }
        luks_free(luks);
        s->crypt_method = QCOW2_CRYPT_LUKS;
    }
    s->size = size;
    ok = qcow2_rewrite_header(s, errp);
out:
    bdrv_unref(bs);
    return ok;
}

/* Passphrase `secret_id` is able to unlock the slots marked in match[]. */
static int amend_match_secret(Qcow2State *s, const char *secret_id, bool match[8],
                              GError **errp)
{
    uint8_t *pw;
    size_t pw_len;
    int n;

    if (!secret_lookup(secret_id, &pw, &pw_len, errp)) {
        return -1;
    }
    n = luks_find_key_slots(s->luks, pw, pw_len, match, errp);
    secret_bytes_free(pw, pw_len);
    return n;
}

/*
 * encrypt.state=active: a new passphrase (new-secret) in keyslot, or in the
 * first free slot; old-secret, if given, must open the image too.
 * encrypt.state=inactive: erase keyslot, or every slot old-secret opens (both
 * given: the slot must be one of those); never every active slot.
 * (qemu-img amend's LUKS options, without --force.)
 */
bool qcow2_amend(BlockDriverState *bs, KeyVal *opts, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autoptr(KeyVal) enc = keyval_extract_prefix(opts, "encrypt.");
    const char *state, *new_secret, *old_secret;
    uint64_t iter_time, keyslot;
    bool has_keyslot, match[8] = {false};
    LuksIO io = qcow2_luks_io(s);
    LuksInfo info;
    int active = 0, matched = 0;

    if (!keyval_check_unused(opts, "Changing this option is not supported; amend",
                             errp)) {
        return false;
    }
    if (s->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION, "Image '%s' is read-only",
                    bs->filename);
        return false;
    }
    if (!keyval_keys(enc)[0]) {
        return true;
    }
    if (!s->luks) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "encrypt.* can only be amended on an unlocked LUKS image (give "
                    "encrypt.key-secret with --image-opts)");
        return false;
    }
    keyval_get(enc, "format");
    state = keyval_get(enc, "state");
    new_secret = keyval_get(enc, "new-secret");
    old_secret = keyval_get(enc, "old-secret");
    has_keyslot = keyval_has(enc, "keyslot");
    if (!keyval_get_uint(enc, "iter-time", 2000, &iter_time, errp) ||
        !keyval_get_uint(enc, "keyslot", 0, &keyslot, errp) ||
        !keyval_check_unused(enc, "encrypt", errp) ||
        !luks_get_info(s->luks, &io, &info, errp)) {
        return false;
    }
    if (has_keyslot && keyslot > 7) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid keyslot %" G_GUINT64_FORMAT " (0..7)", keyslot);
        return false;
    }
    if (state && strcmp(state, "active") && strcmp(state, "inactive")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid parameter encrypt.state=%s (use active or inactive)", state);
        return false;
    }
    for (int i = 0; i < 8; i++) {
        active += info.slots[i].active;
    }
    if (old_secret && (matched = amend_match_secret(s, old_secret, match, errp)) <= 0) {
        if (matched == 0) {
            g_set_error(
                errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                "Invalid password, cannot unlock any keyslot (encrypt.old-secret)");
        }
        return false;
    }
    if (!state || !strcmp(state, "active")) {
        uint8_t *pw;
        size_t pw_len;
        int slot;
        bool ok;

        if (!new_secret) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "encrypt.new-secret is required to add a passphrase");
            return false;
        }
        if (!secret_lookup(new_secret, &pw, &pw_len, errp)) {
            return false;
        }
        ok = luks_add_key(s->luks, pw, pw_len, iter_time, has_keyslot ? (int)keyslot : -1,
                          &slot, errp);
        secret_bytes_free(pw, pw_len);
        return ok && qcow2_file_flush(s, errp);
    }
    if (new_secret) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "encrypt.new-secret only goes with encrypt.state=active");
        return false;
    }
    if (has_keyslot) {
        if (!info.slots[keyslot].active) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Keyslot %" G_GUINT64_FORMAT " is not active", keyslot);
            return false;
        }
        if (old_secret && !match[keyslot]) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Keyslot %" G_GUINT64_FORMAT " is not opened by "
                        "encrypt.old-secret; give one of them, or both matching",
                        keyslot);
            return false;
        }
        memset(match, 0, sizeof(match));
        match[keyslot] = true;
        matched = 1;
    } else if (!old_secret) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "encrypt.keyslot or encrypt.old-secret is required to erase a "
                    "passphrase");
        return false;
    }
    if (matched >= active) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    matched == 1
                        ? "Attempt to erase the only active keyslot which will "
                          "erase all the data in the image irreversibly - "
                          "refusing operation"
                        : "All the active keyslots match the (old) password that "
                          "was given and erasing them will erase all the data in "
                          "the image irreversibly - refusing operation");
        return false;
    }
    for (int i = 0; i < 8; i++) {
        if (match[i] && !luks_erase_key(s->luks, i, errp)) {
            return false;
        }
    }
    return qcow2_file_flush(s, errp);
}
