/*
 * Plain driver for the fuzz targets when libFuzzer is not used: runs
 * LLVMFuzzerTestOneInput() on every file of the seed corpus, then on a fixed
 * number of inputs derived from the seeds (bit flips, byte changes, inserts,
 * deletes, splices, truncation) and of plain random bytes. Everything comes
 * from one seed, so a failure is reproduced by running with the same --seed.
 *
 *   fuzz-NAME [CORPUS_DIR|FILE]... [--iterations N] [--seed S] [--max-len N]
 *
 * FUZZ_ITERATIONS and FUZZ_SEED in the environment override the defaults.
 * When an input crashes the target, it is written to crash-<target>-<pid> in
 * FUZZ_CRASH_DIR (default: the current directory) so that it can be run
 * again alone (fuzz-NAME crash-FILE --iterations 0) and added to the corpus.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* The input being run, for the crash handler (written before each run). */
static const uint8_t *volatile current_data;
static volatile size_t current_len;
static char crash_path[4096];

/* Async-signal-safe: only open/write/close on prepared data. */
static void save_current_input(void)
{
    const uint8_t *d = current_data;
    size_t len = current_len;
    int fd;

    if (!d || !crash_path[0]) {
        return;
    }
    fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return;
    }
    while (len > 0) {
        ssize_t n = write(fd, d, len);
        if (n <= 0) {
            break;
        }
        d += n;
        len -= n;
    }
    close(fd);
    if (write(2, "replay: crashing input saved to ", 32) > 0 &&
        write(2, crash_path, strlen(crash_path)) > 0) {
        (void)!write(2, "\n", 1);
    }
}

static void crash_signal(int sig)
{
    save_current_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handlers(const char *argv0)
{
    g_autofree char *base = g_path_get_basename(argv0);
    const char *dir = g_getenv("FUZZ_CRASH_DIR");
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};

    g_snprintf(crash_path, sizeof(crash_path), "%s/crash-%s-%d", dir ? dir : ".", base,
               (int)getpid());
    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
        signal(sigs[i], crash_signal);
    }
    /* ASan/UBSan reports end in _exit, not a signal. */
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(save_current_input);
    }
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_path(GPtrArray *seeds, const char *path)
{
    g_autoptr(GError) err = NULL;
    GDir *dir;

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        dir = g_dir_open(path, 0, &err);
        if (!dir) {
            fprintf(stderr, "replay: cannot open corpus '%s': %s\n", path, err->message);
            exit(2);
        }
        while ((name = g_dir_read_name(dir))) {
            g_ptr_array_add(names, g_build_filename(path, name, NULL));
        }
        g_dir_close(dir);
        /* Sorted, so that the order (and the random stream) is reproducible. */
        g_ptr_array_sort(names, cmp_names);
        for (guint i = 0; i < names->len; i++) {
            add_path(seeds, names->pdata[i]);
        }
        return;
    }
    {
        gchar *data;
        gsize len;

        if (!g_file_get_contents(path, &data, &len, &err)) {
            fprintf(stderr, "replay: cannot read '%s': %s\n", path, err->message);
            exit(2);
        }
        g_ptr_array_add(seeds, g_byte_array_new_take((guint8 *)data, len));
    }
}

static void run_one(const uint8_t *data, size_t len)
{
    /* Give the target its own heap copy so that ASan sees over-reads. */
    uint8_t *copy = g_memdup2(data, len);

    current_data = data;
    current_len = len;
    LLVMFuzzerTestOneInput(copy ? copy : (const uint8_t *)"", len);
    current_data = NULL;
    g_free(copy);
}

static void insert_bytes(GByteArray *a, guint pos, const uint8_t *b, guint n)
{
    guint old = a->len;

    g_byte_array_set_size(a, old + n);
    memmove(a->data + pos + n, a->data + pos, old - pos);
    memcpy(a->data + pos, b, n);
}

static GByteArray *mutate(GRand *rnd, GPtrArray *seeds, size_t max_len)
{
    GByteArray *in = g_byte_array_new();
    unsigned rounds;

    if (!seeds->len || g_rand_int_range(rnd, 0, 8) == 0) {
        size_t len = g_rand_int_range(rnd, 0, (gint32)max_len + 1);
        g_byte_array_set_size(in, len);
        for (size_t i = 0; i < len; i++) {
            in->data[i] = g_rand_int(rnd);
        }
        return in;
    }
    {
        GByteArray *seed = seeds->pdata[g_rand_int_range(rnd, 0, seeds->len)];
        g_byte_array_append(in, seed->data, seed->len);
    }
    rounds = 1 + g_rand_int_range(rnd, 0, 8);
    for (unsigned r = 0; r < rounds; r++) {
        size_t pos = in->len ? g_rand_int_range(rnd, 0, in->len) : 0;

        switch (g_rand_int_range(rnd, 0, 7)) {
        case 0: /* flip a bit */
            if (in->len) {
                in->data[pos] ^= 1 << g_rand_int_range(rnd, 0, 8);
            }
            break;
        case 1: /* new byte value, biased to boundaries */
            if (in->len) {
                static const uint8_t special[] = {0, 1, 2, 0x7f, 0x80, 0xfe, 0xff};
                in->data[pos] = g_rand_boolean(rnd)
                                    ? special[g_rand_int_range(rnd, 0, sizeof(special))]
                                    : g_rand_int(rnd);
            }
            break;
        case 2: { /* insert random bytes */
            uint8_t b[8];
            guint n = g_rand_int_range(rnd, 1, 9);
            for (guint i = 0; i < n; i++) {
                b[i] = g_rand_int(rnd);
            }
            insert_bytes(in, pos, b, n);
            break;
        }
        case 3: /* delete a run */
            if (in->len) {
                guint n = g_rand_int_range(rnd, 1, 17);
                g_byte_array_remove_range(in, pos, MIN(in->len - pos, n));
            }
            break;
        case 4: { /* splice in a piece of another seed */
            GByteArray *other = seeds->pdata[g_rand_int_range(rnd, 0, seeds->len)];
            if (other->len) {
                guint from = g_rand_int_range(rnd, 0, other->len);
                guint n = g_rand_int_range(rnd, 1, 65);
                n = MIN(other->len - from, n);
                insert_bytes(in, pos, other->data + from, n);
            }
            break;
        }
        case 5: /* duplicate a run (repeats of a step) */
            if (in->len) {
                guint n = g_rand_int_range(rnd, 1, 33);
                n = MIN(in->len - pos, n);
                g_autofree uint8_t *run = g_memdup2(in->data + pos, n);
                insert_bytes(in, pos, run, n);
            }
            break;
        default: /* truncate */
            g_byte_array_set_size(in, pos);
            break;
        }
    }
    if (in->len > max_len) {
        g_byte_array_set_size(in, max_len);
    }
    return in;
}

int main(int argc, char **argv)
{
    g_autoptr(GPtrArray) seeds =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
    guint64 iterations = 2000, seed = 0x5eed, max_len = 4096;
    const char *env;
    g_autoptr(GRand) rnd = NULL;

    install_crash_handlers(argv[0]);
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    if ((env = g_getenv("FUZZ_ITERATIONS"))) {
        iterations = g_ascii_strtoull(env, NULL, 0);
    }
    if ((env = g_getenv("FUZZ_SEED"))) {
        seed = g_ascii_strtoull(env, NULL, 0);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            iterations = g_ascii_strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = g_ascii_strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--max-len") == 0 && i + 1 < argc) {
            max_len = g_ascii_strtoull(argv[++i], NULL, 0);
        } else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: %s [CORPUS_DIR|FILE]... [--iterations N] [--seed S] "
                    "[--max-len N]\n",
                    argv[0]);
            return 2;
        } else {
            add_path(seeds, argv[i]);
        }
    }
    if (max_len == 0 || max_len > (1 << 20)) {
        max_len = 4096;
    }
    printf("# replay: %u seed inputs, %" G_GUINT64_FORMAT
           " generated inputs, seed 0x%" G_GINT64_MODIFIER "x\n",
           seeds->len, iterations, seed);
    fflush(stdout);
    for (guint i = 0; i < seeds->len; i++) {
        GByteArray *s = seeds->pdata[i];
        run_one(s->data, s->len);
    }
    rnd = g_rand_new_with_seed_array(
        (const guint32[]){(guint32)seed, (guint32)(seed >> 32)}, 2);
    for (guint64 n = 0; n < iterations; n++) {
        g_autoptr(GByteArray) in = mutate(rnd, seeds, max_len);
        run_one(in->data, in->len);
    }
    printf("# replay: done, no failure\n");
    return 0;
}
