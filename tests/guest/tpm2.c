/*
 * TPM 2.0 command marshalling for the test guest (TPM 2.0 Library Part 2
 * structures, Part 3 commands). Authorisation is the empty password session
 * (TPM_RS_PW), enough for owner and index auth on a fresh TPM.
 */
#include "tpm2.h"

/* Command builder: appends big-endian fields, sizes fixed up at the end. */
static void put8(Tpm *t, uint8_t v)
{
    if (t->cmd_len < TPM2_BUF_MAX) {
        t->cmd[t->cmd_len] = v;
    }
    t->cmd_len++;
}

static void put16(Tpm *t, uint16_t v)
{
    put8(t, (uint8_t)(v >> 8));
    put8(t, (uint8_t)v);
}

static void put32(Tpm *t, uint32_t v)
{
    put16(t, (uint16_t)(v >> 16));
    put16(t, (uint16_t)v);
}

static void put_bytes(Tpm *t, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put8(t, p[i]);
    }
}

static void cmd_begin(Tpm *t, uint16_t tag, uint32_t cc)
{
    t->cmd_len = 0;
    put16(t, tag);
    put32(t, 0); /* size, set by cmd_end */
    put32(t, cc);
}

/* Authorisation area with one empty password session (Part 1, 19.6.4). */
static void put_pw_session(Tpm *t)
{
    put32(t, 9);          /* authorizationSize */
    put32(t, TPM2_RS_PW); /* sessionHandle */
    put16(t, 0);          /* nonce */
    put8(t, 0);           /* sessionAttributes */
    put16(t, 0);          /* hmac (password) */
}

/* Response reader with a sticky error. */
typedef struct Reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} Reader;

static uint32_t get_n(Reader *r, unsigned n)
{
    uint32_t v = 0;

    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        v = v << 8 | r->p[r->pos++];
    }
    return v;
}

static bool get_bytes(Reader *r, uint8_t *out, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return false;
    }
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return true;
}

int tpm2_exec(Tpm *t)
{
    uint32_t size, rc;
    uint16_t tag;
    long n;

    if (t->cmd_len > TPM2_BUF_MAX) {
        plat_snprintf(t->err, sizeof(t->err), "command too large (%u bytes)",
                      (unsigned)t->cmd_len);
        return -1;
    }
    t->cmd[2] = (uint8_t)(t->cmd_len >> 24);
    t->cmd[3] = (uint8_t)(t->cmd_len >> 16);
    t->cmd[4] = (uint8_t)(t->cmd_len >> 8);
    t->cmd[5] = (uint8_t)t->cmd_len;
    n = tis_transmit(t->tis, t->cmd, t->cmd_len, t->resp, sizeof(t->resp));
    if (n < 0) {
        plat_snprintf(t->err, sizeof(t->err), "TIS: %s", t->tis->err);
        return -1;
    }
    t->resp_len = (size_t)n;
    tag = (uint16_t)(t->resp[0] << 8 | t->resp[1]);
    size = (uint32_t)t->resp[2] << 24 | (uint32_t)t->resp[3] << 16 |
           (uint32_t)t->resp[4] << 8 | t->resp[5];
    rc = (uint32_t)t->resp[6] << 24 | (uint32_t)t->resp[7] << 16 |
         (uint32_t)t->resp[8] << 8 | t->resp[9];
    if ((tag != TPM2_ST_NO_SESSIONS && tag != TPM2_ST_SESSIONS) || size != n) {
        plat_snprintf(t->err, sizeof(t->err),
                      "malformed response: tag 0x%x, size field %u, %ld bytes read", tag,
                      (unsigned)size, n);
        return -1;
    }
    if (rc) {
        plat_snprintf(t->err, sizeof(t->err), "TPM returned rc 0x%x", (unsigned)rc);
        return (int)rc;
    }
    return 0;
}

/* Reader over the response parameters (after the parameterSize with sessions). */
static Reader resp_params(Tpm *t)
{
    Reader r = {t->resp, t->resp_len, 10, false};

    if (t->resp[0] == (TPM2_ST_SESSIONS >> 8) &&
        t->resp[1] == (TPM2_ST_SESSIONS & 0xff)) {
        uint32_t psize = get_n(&r, 4);

        if (!r.bad && psize > r.len - r.pos) {
            r.bad = true;
        }
        if (!r.bad) {
            r.len = r.pos + psize;
        }
    }
    return r;
}

static int resp_bad(Tpm *t, const char *what)
{
    plat_snprintf(t->err, sizeof(t->err), "malformed %s response (%u bytes)", what,
                  (unsigned)t->resp_len);
    return -1;
}

int tpm2_startup(Tpm *t, uint16_t type)
{
    cmd_begin(t, TPM2_ST_NO_SESSIONS, TPM2_CC_STARTUP);
    put16(t, type);
    return tpm2_exec(t);
}

int tpm2_get_random(Tpm *t, uint8_t *out, uint16_t want, uint16_t *got)
{
    Reader r;
    uint32_t n;
    int rc;

    cmd_begin(t, TPM2_ST_NO_SESSIONS, TPM2_CC_GET_RANDOM);
    put16(t, want);
    rc = tpm2_exec(t);
    if (rc) {
        return rc;
    }
    r = resp_params(t);
    n = get_n(&r, 2);
    if (r.bad || n > want || !get_bytes(&r, out, n)) {
        return resp_bad(t, "GetRandom");
    }
    *got = (uint16_t)n;
    return 0;
}

int tpm2_pcr_extend(Tpm *t, uint32_t pcr, const uint8_t digest[32])
{
    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_PCR_EXTEND);
    put32(t, pcr);
    put_pw_session(t);
    put32(t, 1); /* TPML_DIGEST_VALUES.count */
    put16(t, TPM2_ALG_SHA256);
    put_bytes(t, digest, 32);
    return tpm2_exec(t);
}

int tpm2_pcr_read(Tpm *t, uint32_t pcr, uint8_t digest[32])
{
    uint8_t select[3] = {0, 0, 0};
    Reader r;
    uint32_t count, hash, sel_size, ndig, dsize;
    int rc;

    if (pcr >= 24) {
        plat_snprintf(t->err, sizeof(t->err), "PCR %u out of range", (unsigned)pcr);
        return -1;
    }
    select[pcr / 8] = (uint8_t)(1u << (pcr % 8));
    cmd_begin(t, TPM2_ST_NO_SESSIONS, TPM2_CC_PCR_READ);
    put32(t, 1); /* TPML_PCR_SELECTION.count */
    put16(t, TPM2_ALG_SHA256);
    put8(t, 3);
    put_bytes(t, select, 3);
    rc = tpm2_exec(t);
    if (rc) {
        return rc;
    }
    r = resp_params(t);
    get_n(&r, 4); /* pcrUpdateCounter */
    count = get_n(&r, 4);
    hash = get_n(&r, 2);
    sel_size = get_n(&r, 1);
    if (r.bad || count != 1 || hash != TPM2_ALG_SHA256 || sel_size > 8) {
        return resp_bad(t, "PCR_Read (selection)");
    }
    r.pos += sel_size;
    if (r.pos > r.len) {
        return resp_bad(t, "PCR_Read (selection)");
    }
    ndig = get_n(&r, 4);
    dsize = get_n(&r, 2);
    if (r.bad || ndig != 1 || dsize != 32 || !get_bytes(&r, digest, 32)) {
        return resp_bad(t, "PCR_Read (digests)");
    }
    return 0;
}

int tpm2_nv_define(Tpm *t, uint32_t index, uint32_t attrs, uint16_t size)
{
    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINE_SPACE);
    put32(t, TPM2_RH_OWNER);
    put_pw_session(t);
    put16(t, 0);  /* auth: empty */
    put16(t, 14); /* TPM2B_NV_PUBLIC.size */
    put32(t, index);
    put16(t, TPM2_ALG_SHA256);
    put32(t, attrs);
    put16(t, 0); /* authPolicy: empty */
    put16(t, size);
    return tpm2_exec(t);
}

int tpm2_nv_undefine(Tpm *t, uint32_t index)
{
    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_NV_UNDEFINE_SPACE);
    put32(t, TPM2_RH_OWNER);
    put32(t, index);
    put_pw_session(t);
    return tpm2_exec(t);
}

int tpm2_nv_read_public(Tpm *t, uint32_t index, uint32_t *attrs, uint16_t *size)
{
    Reader r;
    uint32_t psize, idx, pol;
    int rc;

    cmd_begin(t, TPM2_ST_NO_SESSIONS, TPM2_CC_NV_READ_PUBLIC);
    put32(t, index);
    rc = tpm2_exec(t);
    if (rc) {
        return rc;
    }
    r = resp_params(t);
    psize = get_n(&r, 2);
    idx = get_n(&r, 4);
    get_n(&r, 2); /* nameAlg */
    *attrs = get_n(&r, 4);
    pol = get_n(&r, 2);
    r.pos += pol;
    if (r.bad || r.pos > r.len || idx != index || psize < 14) {
        return resp_bad(t, "NV_ReadPublic");
    }
    *size = (uint16_t)get_n(&r, 2);
    return r.bad ? resp_bad(t, "NV_ReadPublic") : 0;
}

int tpm2_nv_write(Tpm *t, uint32_t index, const uint8_t *data, uint16_t len,
                  uint16_t offset)
{
    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE);
    put32(t, index); /* authHandle: the index (TPMA_NV_AUTHWRITE) */
    put32(t, index);
    put_pw_session(t);
    put16(t, len);
    put_bytes(t, data, len);
    put16(t, offset);
    return tpm2_exec(t);
}

int tpm2_nv_read(Tpm *t, uint32_t index, uint8_t *data, uint16_t len, uint16_t offset)
{
    Reader r;
    uint32_t n;
    int rc;

    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_NV_READ);
    put32(t, index);
    put32(t, index);
    put_pw_session(t);
    put16(t, len);
    put16(t, offset);
    rc = tpm2_exec(t);
    if (rc) {
        return rc;
    }
    r = resp_params(t);
    n = get_n(&r, 2);
    if (r.bad || n != len || !get_bytes(&r, data, n)) {
        return resp_bad(t, "NV_Read");
    }
    return 0;
}

int tpm2_nv_increment(Tpm *t, uint32_t index)
{
    cmd_begin(t, TPM2_ST_SESSIONS, TPM2_CC_NV_INCREMENT);
    put32(t, index);
    put32(t, index);
    put_pw_session(t);
    return tpm2_exec(t);
}

int tpm2_get_properties(Tpm *t, uint32_t first, uint32_t count, uint32_t *props,
                        uint32_t *values, uint32_t max, uint32_t *n)
{
    Reader r;
    uint32_t cap, num;
    int rc;

    cmd_begin(t, TPM2_ST_NO_SESSIONS, TPM2_CC_GET_CAPABILITY);
    put32(t, TPM2_CAP_TPM_PROPERTIES);
    put32(t, first);
    put32(t, count);
    rc = tpm2_exec(t);
    if (rc) {
        return rc;
    }
    r = resp_params(t);
    get_n(&r, 1); /* moreData */
    cap = get_n(&r, 4);
    num = get_n(&r, 4);
    if (r.bad || cap != TPM2_CAP_TPM_PROPERTIES) {
        return resp_bad(t, "GetCapability");
    }
    *n = 0;
    for (uint32_t i = 0; i < num; i++) {
        uint32_t p = get_n(&r, 4), v = get_n(&r, 4);

        if (r.bad) {
            return resp_bad(t, "GetCapability (properties)");
        }
        if (*n < max) {
            props[*n] = p;
            values[*n] = v;
            (*n)++;
        }
    }
    return 0;
}
