/* hekate-show: prints what .torrent files describe (name, info-hash, magnet link, privacy, pieces, size, trackers by
 * tier, files), in the spirit of transmission-show. It reads the files; the parsing is core/metainfo's. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metainfo.h"
#include "shard.h"

#define MAX_TORRENT_BYTES (256u << 20) /* larger .torrent files are refused before reading */

static void usage(FILE *to)
{
    fprintf(to, "Usage: hekate-show [options] FILE.torrent...\n"
                "\n"
                "Prints what each .torrent file describes: name, info-hash, magnet link, privacy, piece size and\n"
                "count, total size, trackers by tier and the file list (in the torrent's order; pad files marked).\n"
                "\n"
                "Options:\n"
                "  -m, --magnet         print only the magnet link of each torrent\n"
                "      --peer=ADDR:PORT add x.pe=ADDR:PORT (numeric IPv4, or [IPv6]) to the magnet links: the\n"
                "                       seeder's own address, for clients that can dial it directly\n"
                "      --shards=N       also print the shard K of N of each torrent: the hekate --shard=K/N\n"
                "                       that serves it (first 8 bytes of the info-hash, big-endian, mod N);\n"
                "                       with -m, \"K<TAB>\" before each link\n"
                "  -h, --help           show this help and exit\n"
                "\n"
                "A magnet link carries the name (dn=) and every tracker of the torrent (tr=, in tier order).\n"
                "\n"
                "Exit status: 0 if every file was shown, 1 if any could not be read or is not a valid torrent,\n"
                "2 on a usage error.\n");
}

/* Reads a whole file. Returns NULL and sets errno (EFBIG if over the limit) on failure. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 64 * 1024, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= MAX_TORRENT_BYTES) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
        errno = EIO;
    }
    int saved = errno;
    fclose(f);
    errno = saved;
    *len = n;
    return buf;
}

/* The torrent's magnet link, malloc'd; NULL if out of memory. */
static char *magnet_of(const mi_torrent *t, const char *peer)
{
    size_t n = mi_magnet(t, peer, NULL, 0);
    char *m = malloc(n + 1);
    if (m)
        mi_magnet(t, peer, m, n + 1);
    return m;
}

/* "108.40 KiB" for sizes of 1 KiB and more; "" otherwise. */
static const char *human(unsigned long long n, char *buf, size_t cap)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (n < 1024) {
        buf[0] = '\0';
        return buf;
    }
    double v = (double)n / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

/* "108.40 KiB (111001 bytes)" or "1000 bytes" */
static void print_size(const char *label, unsigned long long n)
{
    char h[32];
    if (*human(n, h, sizeof h))
        printf("  %s: %s (%llu bytes)\n", label, h, n);
    else
        printf("  %s: %llu bytes\n", label, n);
}

static uint32_t shards; /* --shards=N (0: not asked) */

static void show(const char *path, const mi_torrent *t, const char *peer)
{
    char hex[IH_HEX_LEN + 1], h[32];
    char *magnet = magnet_of(t, peer);
    ih_hex(t->info_hash, hex);
    printf("Name: %s\nFile: %s\n\nGENERAL\n\n", t->name, path);
    printf("  Name: %s\n", t->name);
    printf("  Hash: %s\n", hex);
    if (shards)
        printf("  Shard: %u of %u (hekate --shard=%u/%u)\n", hk_shard_of(t->info_hash, shards), shards,
               hk_shard_of(t->info_hash, shards), shards);
    if (magnet)
        printf("  Magnet: %s\n", magnet);
    free(magnet);
    printf("  Privacy: %s\n", t->is_private ? "Private torrent" : "Public torrent");
    printf("  Meta Version: %s\n", t->hybrid ? "hybrid (v1 + v2), loaded as v1" : "v1");
    printf("  Piece Count: %u\n", t->piece_count);
    print_size("Piece Size", t->piece_length);
    print_size("Total Size", t->total_length);

    printf("\nTRACKERS\n");
    if (t->tier_count == 0)
        printf("\n  (none)\n");
    for (uint32_t i = 0; i < t->tier_count; i++) {
        printf("\n  Tier #%u\n", i + 1);
        for (uint32_t j = 0; j < t->tiers[i].count; j++)
            printf("  %s\n", t->trackers[t->tiers[i].first + j]);
    }

    printf("\nFILES\n\n");
    char rel[MI_MAX_PATH + 1];
    for (uint32_t i = 0; i < t->file_count; i++) {
        const mi_file *f = &t->files[i];
        unsigned long long n = f->length;
        mi_file_relpath(t, i, rel, sizeof rel);
        if (*human(n, h, sizeof h))
            printf("  %s (%s, %llu bytes)", rel, h, n);
        else
            printf("  %s (%llu bytes)", rel, n);
        if (f->flags & MI_FILE_PAD)
            printf(" [padding]");
        if (f->flags & MI_FILE_EXECUTABLE)
            printf(" [executable]");
        if (f->flags & MI_FILE_HIDDEN)
            printf(" [hidden]");
        if (f->flags & MI_FILE_SYMLINK)
            printf(" [symlink]");
        printf("\n");
    }
}

/* While options are on, an argument that starts with "-" (not "-" alone) is one; "--" is the last one. */
static bool is_option(const char *arg, bool *options)
{
    if (!*options || arg[0] != '-' || arg[1] == '\0')
        return false;
    if (strcmp(arg, "--") == 0)
        *options = false;
    return true;
}

/* True if s is "IPv4:PORT" or "[IPv6]:PORT" with a numeric address and a port in 1..65535. */
static bool valid_peer(const char *s)
{
    char host[INET6_ADDRSTRLEN + 2];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return false;
    bool v6 = s[0] == '[';
    memcpy(host, s + v6, (size_t)(colon - s) - v6);
    host[(colon - s) - v6] = '\0';
    const char *port = colon + 1 + v6;
    char *end;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] < '0' || port[0] > '9' || *end || errno || p == 0 || p > 65535)
        return false;
    return inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) == 1;
}

/* Reads the options: -1 to go on (*magnet_only, *peer set), else the exit status (--help 0, a usage error 2). */
static int read_options(int argc, char **argv, bool *magnet_only, const char **peer)
{
    bool options = true;
    int files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!is_option(a, &options)) {
            files++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--magnet") == 0) {
            *magnet_only = true;
        } else if (strncmp(a, "--peer=", 7) == 0) {
            if (!valid_peer(a + 7)) {
                fprintf(stderr, "hekate-show: --peer: \"%s\" is not ADDR:PORT (numeric IPv4, or [IPv6], and a port "
                                "1..65535)\n", a + 7);
                return 2;
            }
            *peer = a + 7;
        } else if (strncmp(a, "--shards=", 9) == 0) {
            uint32_t k, n;
            char text[32], err[256];
            snprintf(text, sizeof text, "0/%.20s", a + 9);
            if (hk_shard_parse("--shards", text, &k, &n, err, sizeof err) != 0) {
                fprintf(stderr, "hekate-show: --shards: \"%s\" is not a number of shards (1..%u)\n", a + 9,
                        HK_SHARD_MAX);
                return 2;
            }
            shards = n;
        } else if (strcmp(a, "--") != 0) {
            fprintf(stderr, "hekate-show: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (files == 0) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static int print_magnet(const char *path, const mi_torrent *t, const char *peer)
{
    char *m = magnet_of(t, peer);
    if (!m) {
        fprintf(stderr, "hekate-show: %s: out of memory\n", path);
        return 1;
    }
    if (shards)
        printf("%u\t", hk_shard_of(t->info_hash, shards));
    printf("%s\n", m);
    free(m);
    return 0;
}

/* Shows one .torrent file (or only its magnet link): 0, or 1 after saying on stderr what went wrong. *first: no
 * torrent shown yet (the next one is not preceded by an empty line). */
static int show_file(const char *path, bool magnet_only, const char *peer, bool *first)
{
    size_t len = 0;
    unsigned char *buf = read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "hekate-show: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int status = 0;
    mi_torrent *t;
    mi_error err;
    if (mi_parse(buf, len, &t, &err) < 0) {
        fprintf(stderr, "hekate-show: %s: %s\n", path, err.what);
        status = 1;
    } else if (magnet_only) {
        status = print_magnet(path, t, peer);
        mi_free(t);
    } else {
        if (!*first)
            printf("\n");
        *first = false;
        show(path, t, peer);
        mi_free(t);
    }
    free(buf);
    fflush(stdout);
    return status;
}

int main(int argc, char **argv)
{
    bool magnet_only = false;
    const char *peer = NULL;
    int status = read_options(argc, argv, &magnet_only, &peer);
    if (status >= 0)
        return status;
    status = 0;
    bool options = true, first = true;
    for (int i = 1; i < argc; i++) {
        if (!is_option(argv[i], &options) && show_file(argv[i], magnet_only, peer, &first) != 0)
            status = 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "hekate-show: error writing output\n");
        return 1;
    }
    return status;
}
