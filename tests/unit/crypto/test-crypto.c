/*
 * Crypto primitives behind LUKS: PBKDF2 known answers and calibration, the AF
 * splitter, XTS-AES plain64 known answers, legacy qcow AES, randomness.
 */
#include <string.h>
#include <time.h>

#include "crypto/afsplit.h"
#include "crypto/luks.h"
#include "crypto/pbkdf.h"
#include "crypto/xts.h"
#include "util/error.h"

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = g_malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(g_ascii_xdigit_value(hex[2 * i]) << 4 |
                           g_ascii_xdigit_value(hex[2 * i + 1]));
    }
    *len = n;
    return out;
}

typedef struct Pbkdf2Vector {
    const char *pass;
    size_t pass_len;
    const char *salt;
    size_t salt_len;
    uint32_t iterations;
    const char *dk_hex;
} Pbkdf2Vector;

static void check_pbkdf2_vectors(CryptoHashAlg alg, const Pbkdf2Vector *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_autoptr(GError) err = NULL;
        size_t dk_len;
        g_autofree uint8_t *expected = unhex(v[i].dk_hex, &dk_len);
        g_autofree uint8_t *out = g_malloc(dk_len);

        g_assert_true(crypto_pbkdf2(alg, (const uint8_t *)v[i].pass, v[i].pass_len,
                                    (const uint8_t *)v[i].salt, v[i].salt_len,
                                    v[i].iterations, out, dk_len, &err));
        g_assert_no_error(err);
        g_assert_cmpmem(out, dk_len, expected, dk_len);
    }
}

/* RFC 6070 §2 (the 16777216-iteration vector is left out for speed). */
static void test_pbkdf2_sha1_vectors(void)
{
    static const Pbkdf2Vector v[] = {
        {"password", 8, "salt", 4, 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
        {"password", 8, "salt", 4, 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
        {"password", 8, "salt", 4, 4096, "4b007901b765489abead49d926f721d065a429c1"},
        {"passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36, 4096,
         "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
        {"pass\0word", 9, "sa\0lt", 5, 4096, "56fa6aa75548099dcc37d7f03425e0c3"},
    };

    check_pbkdf2_vectors(CRYPTO_HASH_SHA1, v, G_N_ELEMENTS(v));
}

/* The RFC 6070 inputs with HMAC-SHA-256 (published in RFC 7914 §11's style). */
static void test_pbkdf2_sha256_vectors(void)
{
    static const Pbkdf2Vector v[] = {
        {"password", 8, "salt", 4, 1,
         "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"},
        {"password", 8, "salt", 4, 2,
         "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"},
        {"password", 8, "salt", 4, 4096,
         "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"},
        {"passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36, 4096,
         "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e"
         "9"},
        {"pass\0word", 9, "sa\0lt", 5, 4096, "89b69d0516f829893c696226650a8687"},
    };

    check_pbkdf2_vectors(CRYPTO_HASH_SHA256, v, G_N_ELEMENTS(v));
}

static void test_pbkdf2_zero_iterations_is_an_error(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t out[20];

    g_assert_false(crypto_pbkdf2(CRYPTO_HASH_SHA256, (const uint8_t *)"p", 1,
                                 (const uint8_t *)"s", 1, 0, out, sizeof(out), &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_CORRUPT);
}

static double thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The one slow test: a real calibration run (QEMU's algorithm, > 0.5 s). */
static void test_pbkdf2_calibration_hits_iter_time(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t salt[32] = {1, 2, 3};
    uint8_t out[64];
    uint64_t rate;
    uint32_t iters;
    double start, ms;

    g_assert_true(crypto_pbkdf2_measure_rate(CRYPTO_HASH_SHA256, (const uint8_t *)"pw", 2,
                                             salt, sizeof(salt), sizeof(out), &rate,
                                             &err));
    g_assert_no_error(err);
    g_test_message(
        "PBKDF2-HMAC-SHA256, 64-byte output: %" G_GUINT64_FORMAT " iterations/s", rate);
    g_assert_cmpuint(rate, >, 10000);
    g_assert_true(crypto_pbkdf2_iters_for_time(rate, 10, 1, 1000, &iters, &err));
    g_assert_cmpuint(iters, >=, 1000);

    start = thread_cpu_ms();
    g_assert_true(crypto_pbkdf2(CRYPTO_HASH_SHA256, (const uint8_t *)"pw", 2, salt,
                                sizeof(salt), iters, out, sizeof(out), &err));
    ms = thread_cpu_ms() - start;
    g_test_message("%u iterations took %.2f ms of CPU (target 10 ms)", iters, ms);
    if (iters > 1000) {
        /* Loose: CPU frequency, cache state and a loaded host (CI runs
         * two builds on two cores) vary between runs; an order of magnitude
         * off would still fail. */
        g_assert_cmpfloat(ms, >, 1.0);
        g_assert_cmpfloat(ms, <, 100.0);
    }
}

static void test_pbkdf2_iteration_limits(void)
{
    g_autoptr(GError) err = NULL;
    uint32_t iters;

    g_assert_true(crypto_pbkdf2_iters_for_time(100, 10, 1, 1000, &iters, &err));
    g_assert_cmpuint(iters, ==, 1000);
    g_assert_true(crypto_pbkdf2_iters_for_time(2000000, 2000, 8, 1000, &iters, &err));
    g_assert_cmpuint(iters, ==, 500000);
    g_assert_false(
        crypto_pbkdf2_iters_for_time(UINT64_MAX / 2, 1000, 1, 1000, &iters, &err));
    g_assert_nonnull(strstr(err->message, "iter-time"));
}

static void afsplit_round_trip(CryptoHashAlg alg, size_t block_len, uint32_t stripes)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *key = g_malloc(block_len);
    g_autofree uint8_t *split = g_malloc(block_len * stripes);
    g_autofree uint8_t *merged = g_malloc(block_len);

    g_assert_true(crypto_random_bytes(key, block_len, &err));
    g_assert_true(afsplit_split(alg, block_len, stripes, key, split, &err));
    g_assert_no_error(err);
    afsplit_merge(alg, block_len, stripes, split, merged);
    g_assert_cmpmem(merged, block_len, key, block_len);

    if (stripes > 1) {
        /*
         * Losing one bit of any stripe loses the key. The bit is taken from
         * the stripe's first 20 bytes, which the diffusion hashes as a whole
         * digest: a bit in a short last chunk (1 byte when 33 = 32 + 1) goes
         * through a hash cut to that chunk's length, and two inputs then
         * give the same byte once in 256.
         */
        size_t stripe = (size_t)g_test_rand_int_range(0, (gint32)stripes);
        size_t byte = (size_t)g_test_rand_int_range(0, (gint32)MIN(block_len, 20));

        split[stripe * block_len + byte] ^= (uint8_t)(1u << g_test_rand_int_range(0, 8));
        afsplit_merge(alg, block_len, stripes, split, merged);
        g_assert_true(memcmp(merged, key, block_len) != 0);
    }
}

static void test_afsplit_round_trip(void)
{
    /* Key sizes: whole digests, a partial last chunk (33, 20 vs 32), LUKS's 4000. */
    static const size_t lens[] = {16, 20, 32, 33, 64};

    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        afsplit_round_trip(CRYPTO_HASH_SHA256, lens[i], 4000);
        afsplit_round_trip(CRYPTO_HASH_SHA1, lens[i], 4000);
        afsplit_round_trip(CRYPTO_HASH_SHA256, lens[i], 2);
    }
    afsplit_round_trip(CRYPTO_HASH_SHA256, 64, 1);
}

/*
 * With two all-zero stripes the merge is diffuse(0): chunk j becomes
 * HASH(BE32(j) || chunk), the last chunk cut short. Digests from OpenSSL.
 */
static void test_afsplit_diffuse_uses_be32_chunk_index(void)
{
    uint8_t zeros[2 * 64] = {0};
    uint8_t merged[64];
    size_t len;
    g_autofree uint8_t *sha256 =
        unhex("6db65fd59fd356f6729140571b5bcd6bb3b83492a16e1bf0a3884442fc3c8a0e"
              "c2de8abf5c6306f427fc4de808c7177456c1c0a9f0254d4bae120a88d45b4003",
              &len);
    /* 32-byte key over 20-byte SHA-1 digests: a 20-byte and a 12-byte chunk. */
    g_autofree uint8_t *sha1 =
        unhex("d3399b7262fb56cb9ed053d68db9291c410839c4e63eba4855e4c0ba1a13ae3b", &len);

    afsplit_merge(CRYPTO_HASH_SHA256, 64, 2, zeros, merged);
    g_assert_cmpmem(merged, 64, sha256, 64);
    afsplit_merge(CRYPTO_HASH_SHA1, 32, 2, zeros, merged);
    g_assert_cmpmem(merged, 32, sha1, 32);
}

static const char xts_key1_256[] =
    "2718281828459045235360287471352662497757247093699959574966967627";
static const char xts_key2_256[] =
    "3141592653589793238462643383279502884197169399375105820974944592";

/* IEEE 1619-2007 Annex B, vector 10: XTS-AES-256, data unit 0xff, 512 bytes. */
static const char xts_vector10_ct[] =
    "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
    "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
    "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
    "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
    "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
    "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
    "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
    "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
    "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
    "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
    "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
    "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
    "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
    "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
    "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
    "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

/* IEEE 1619-2007 Annex B, vector 4: XTS-AES-128, data unit 0, 512 bytes. */
static const char xts_vector4_ct[] =
    "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
    "c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
    "328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
    "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
    "5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
    "a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
    "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
    "5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
    "94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
    "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
    "e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
    "b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
    "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
    "afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
    "bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
    "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568";

static void xts_known_answer(const char *key_hex, uint64_t sector, const char *ct_hex)
{
    g_autoptr(GError) err = NULL;
    size_t key_len, ct_len;
    g_autofree uint8_t *key = unhex(key_hex, &key_len);
    g_autofree uint8_t *ct = unhex(ct_hex, &ct_len);
    uint8_t buf[512];
    CryptoXts *xts;

    g_assert_cmpuint(ct_len, ==, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)i;
    }
    xts = crypto_xts_new(key, key_len, &err);
    g_assert_no_error(err);
    crypto_xts_encrypt(xts, sector, buf, sizeof(buf));
    g_assert_cmpmem(buf, sizeof(buf), ct, ct_len);
    crypto_xts_decrypt(xts, sector, buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        g_assert_cmpuint(buf[i], ==, (uint8_t)i);
    }
    crypto_xts_free(xts);
}

static void test_xts_aes256_ieee1619_vector10(void)
{
    g_autofree char *key = g_strconcat(xts_key1_256, xts_key2_256, NULL);

    xts_known_answer(key, 0xff, xts_vector10_ct);
}

static void test_xts_aes128_ieee1619_vector4(void)
{
    xts_known_answer("27182818284590452353602874713526"
                     "31415926535897932384626433832795",
                     0, xts_vector4_ct);
}

static void test_xts_sector_number_is_the_tweak(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t key[64];
    uint8_t many[4 * 512], one[512];
    CryptoXts *xts;

    g_assert_true(crypto_random_bytes(key, sizeof(key), &err));
    xts = crypto_xts_new(key, sizeof(key), &err);
    memset(many, 0x5a, sizeof(many));
    crypto_xts_encrypt(xts, UINT64_MAX - 1, many, sizeof(many));
    for (int i = 0; i < 4; i++) {
        memset(one, 0x5a, sizeof(one));
        /* Sector numbers wrap like plain64's 64-bit counter. */
        crypto_xts_encrypt(xts, UINT64_MAX - 1 + (uint64_t)i, one, sizeof(one));
        g_assert_cmpmem(many + i * 512, 512, one, 512);
        if (i > 0) {
            g_assert_true(memcmp(many + i * 512, many + (i - 1) * 512, 512) != 0);
        }
    }
    crypto_xts_free(xts);
    g_assert_null(crypto_xts_new(key, 48, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_GENERIC);
}

static void test_qcow_aes_pads_and_truncates_passphrase(void)
{
    uint8_t a[1024], b[1024], plain[1024];
    QcowAes *short_pw = qcow_aes_new((const uint8_t *)"pw", 2);
    QcowAes *padded = qcow_aes_new((const uint8_t *)"pw\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    QcowAes *long1 = qcow_aes_new((const uint8_t *)"0123456789abcdefXYZ", 19);
    QcowAes *long2 = qcow_aes_new((const uint8_t *)"0123456789abcdef", 16);

    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i ^ 0x3c);
    }
    memcpy(a, plain, sizeof(a));
    memcpy(b, plain, sizeof(b));
    qcow_aes_encrypt(short_pw, 7, a, sizeof(a));
    qcow_aes_encrypt(padded, 7, b, sizeof(b));
    g_assert_cmpmem(a, sizeof(a), b, sizeof(b));
    /* Each sector restarts CBC with its own IV. */
    g_assert_true(memcmp(a, a + 512, 512) != 0);
    qcow_aes_decrypt(short_pw, 7, a, sizeof(a));
    g_assert_cmpmem(a, sizeof(a), plain, sizeof(plain));

    memcpy(a, plain, sizeof(a));
    memcpy(b, plain, sizeof(b));
    qcow_aes_encrypt(long1, 0, a, sizeof(a));
    qcow_aes_encrypt(long2, 0, b, sizeof(b));
    g_assert_cmpmem(a, sizeof(a), b, sizeof(b));

    qcow_aes_free(short_pw);
    qcow_aes_free(padded);
    qcow_aes_free(long1);
    qcow_aes_free(long2);
}

static void test_random_bytes_differ(void)
{
    g_autoptr(GError) err = NULL;
    uint8_t a[64] = {0}, b[64] = {0}, zero[64] = {0};

    g_assert_true(crypto_random_bytes(a, sizeof(a), &err));
    g_assert_true(crypto_random_bytes(b, sizeof(b), &err));
    g_assert_true(memcmp(a, zero, sizeof(a)) != 0);
    g_assert_true(memcmp(a, b, sizeof(a)) != 0);
}

/* Figures for the report: `test-crypto -m perf -p /crypto/perf`. */
static void test_perf_xts_throughput(void)
{
    g_autoptr(GError) err = NULL;
    static const size_t sizes[] = {4096, 1024 * 1024};
    uint8_t key[64];
    CryptoXts *xts;

    if (!g_test_perf()) {
        g_test_skip("throughput figures only with -m perf");
        return;
    }
    g_assert_true(crypto_random_bytes(key, sizeof(key), &err));
    xts = crypto_xts_new(key, sizeof(key), &err);
    for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
        g_autofree uint8_t *buf = g_malloc0(sizes[s]);
        size_t total = 0;
        double start = thread_cpu_ms(), ms;

        while ((ms = thread_cpu_ms() - start) < 500) {
            crypto_xts_encrypt(xts, total / 512, buf, sizes[s]);
            total += sizes[s];
        }
        g_test_message("XTS-AES-256 encrypt, %zu-byte buffers: %.0f MB/s", sizes[s],
                       total / 1e6 / (ms / 1000));
        start = thread_cpu_ms();
        total = 0;
        while ((ms = thread_cpu_ms() - start) < 500) {
            crypto_xts_decrypt(xts, total / 512, buf, sizes[s]);
            total += sizes[s];
        }
        g_test_message("XTS-AES-256 decrypt, %zu-byte buffers: %.0f MB/s", sizes[s],
                       total / 1e6 / (ms / 1000));
    }
    crypto_xts_free(xts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crypto/pbkdf2/sha1-matches-rfc6070", test_pbkdf2_sha1_vectors);
    g_test_add_func("/crypto/pbkdf2/sha256-matches-known-vectors",
                    test_pbkdf2_sha256_vectors);
    g_test_add_func("/crypto/pbkdf2/zero-iterations-is-an-error-not-an-abort",
                    test_pbkdf2_zero_iterations_is_an_error);
    g_test_add_func("/crypto/pbkdf2/iterations-have-a-floor-and-fit-32-bits",
                    test_pbkdf2_iteration_limits);
    g_test_add_func("/crypto/pbkdf2/calibration-for-10ms-takes-about-10ms",
                    test_pbkdf2_calibration_hits_iter_time);
    g_test_add_func("/crypto/afsplit/merge-recovers-split-key", test_afsplit_round_trip);
    g_test_add_func("/crypto/afsplit/diffuse-hashes-be32-index-and-chunk",
                    test_afsplit_diffuse_uses_be32_chunk_index);
    g_test_add_func("/crypto/xts/aes256-matches-ieee1619-vector-10",
                    test_xts_aes256_ieee1619_vector10);
    g_test_add_func("/crypto/xts/aes128-matches-ieee1619-vector-4",
                    test_xts_aes128_ieee1619_vector4);
    g_test_add_func("/crypto/xts/sector-number-is-the-tweak",
                    test_xts_sector_number_is_the_tweak);
    g_test_add_func("/crypto/qcow-aes/passphrase-is-zero-padded-or-truncated-to-16",
                    test_qcow_aes_pads_and_truncates_passphrase);
    g_test_add_func("/crypto/random/bytes-are-not-constant", test_random_bytes_differ);
    g_test_add_func("/crypto/perf/xts-throughput", test_perf_xts_throughput);
    return g_test_run();
}
