/* reactivity_probe: the timing half of bench/reactivity.py (issue 12 item 6): request->first-byte latency of one
 * probing peer, and the load of peers keeping many requests pending. Plain blocking sockets and poll(2), so the
 * figures are the daemon's reaction, not an interpreter's.
 *
 *   reactivity_probe probe PORT[,PORT_B] INFOHASH PIECE_LEN NBLOCKS COUNT GAP_US [SAMPLES_FILE]
 *       one connection from 127.0.0.1: handshake, interested, wait for unchoke, then COUNT requests (after 200
 *       warm-up ones) for 16 KiB blocks cycling over the first NBLOCKS blocks of the torrent, one outstanding at a
 *       time, GAP_US between a reply's end and the next request. Latency = from just before write(REQUEST) to the
 *       return of the read() that delivered the first byte of the PIECE reply. Prints
 *       "PROBE n=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. chokes=.." (and every sample, one a line, to
 *       SAMPLES_FILE).
 *       With PORT,PORT_B: one connection to each daemon, and the requests alternate between them in the order
 *       A B B A A B B A ... (still one outstanding in all, GAP_US after every reply), COUNT timed ones (after 200
 *       warm-up ones) to each; prints "PROBE A n=.." and "PROBE B n=..", and SAMPLES_FILE gets "a b" per line.
 *       The two daemons' samples are taken at the same moments, so what the machine does meanwhile (other jobs,
 *       the host's scheduling) reaches both alike: B, a daemon with no other peer, is A's simultaneous reference.
 *   reactivity_probe load PORT INFOHASH PIECE_LEN NBLOCKS PEERS PENDING RATE HOLD_S
 *       PEERS connections, peer i from 127.(1+i/256).(i%256).2: handshake, interested, unchoke, PENDING requests
 *       each, cycling over NBLOCKS blocks; reads at most RATE bytes/s per peer (64 KiB receive buffer, so the rest
 *       waits in hekate) and sends one new request per PIECE received, so PENDING stay outstanding. Prints
 *       "LOAD READY outstanding=N" once every peer has its PENDING out, then "LOAD outstanding=.. pieces=.." every
 *       second; stops after HOLD_S or SIGTERM.
 *
 * Build: cc -O2 -o reactivity_probe bench/reactivity_probe.c (reactivity.py does it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 16384u

static volatile sig_atomic_t g_stop;
static void on_term(int s) { (void)s; g_stop = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(2); }

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) { struct pollfd pf = {fd, POLLOUT, 0}; poll(&pf, 1, 1000); continue; }
        if (w <= 0) die("write");
        p += w; n -= (size_t)w;
    }
}

static void read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { fprintf(stderr, "read: %s\n", r ? strerror(errno) : "closed by seeder"); exit(2); }
        p += r; n -= (size_t)r;
    }
}

static int connect_from(const char *src, int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (src) {
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
    return fd;
}

/* Handshake (ours, then the seeder's 68 bytes), interested; returns once unchoked (messages before it skipped). */
static void handshake_unchoke(int fd, const uint8_t ih[20])
{
    uint8_t hs[68] = {19};
    memcpy(hs + 1, "BitTorrent protocol", 19);
    memcpy(hs + 28, ih, 20);
    memcpy(hs + 48, "-RP0001-", 8);
    for (int i = 56; i < 68; i++) hs[i] = (uint8_t)rand();
    write_all(fd, hs, 68);
    uint8_t got[68];
    read_all(fd, got, 68);
    if (memcmp(got + 28, ih, 20) != 0) { fprintf(stderr, "wrong info-hash in the reply\n"); exit(2); }
    uint8_t interested[5] = {0, 0, 0, 1, 2};
    write_all(fd, interested, 5);
    for (;;) {
        uint8_t h[4];
        read_all(fd, h, 4);
        uint32_t len = get32(h);
        if (!len) continue;
        uint8_t *m = malloc(len);
        read_all(fd, m, len);
        int id = m[0];
        free(m);
        if (id == 1) return;
    }
}

static void request_msg(uint8_t out[17], uint32_t block, uint32_t piece_len)
{
    uint32_t per = piece_len / BLOCK;
    put32(out, 13);
    out[4] = 6;
    put32(out + 5, block / per);
    put32(out + 9, (block % per) * BLOCK);
    put32(out + 13, BLOCK);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sends one request, returns ns to the first byte of its PIECE; -1 when choked meanwhile (the caller waits). */
static int64_t one_request(int fd, uint32_t block, uint32_t piece_len, int *choked)
{
    static uint8_t buf[BLOCK + 64];
    uint8_t req[17];
    request_msg(req, block, piece_len);
    uint64_t t0 = now_ns();
    write_all(fd, req, 17);
    for (;;) {
        /* each message: the read that brings its first byte is timed */
        ssize_t r;
        do r = read(fd, buf, 1); while (r < 0 && errno == EINTR);
        uint64_t t1 = now_ns();
        if (r <= 0) { fprintf(stderr, "probe: connection closed\n"); exit(2); }
        uint8_t h[4] = {buf[0]};
        read_all(fd, h + 1, 3);
        uint32_t len = get32(h);
        if (!len) continue;
        if (len > sizeof buf) { fprintf(stderr, "probe: message of %u bytes\n", len); exit(2); }
        read_all(fd, buf, len);
        if (buf[0] == 7) return (int64_t)(t1 - t0);
        if (buf[0] == 0) *choked = 1;
        if (buf[0] == 1 && *choked) return -1;
    }
}

static void print_stats(const char *label, uint64_t *lat, long n, long chokes)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    if (!n) { printf("PROBE%s n=0\n", label); return; }
    printf("PROBE%s n=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f chokes=%ld\n", label, n, lat[n / 2] / 1e3,
           lat[n * 9 / 10] / 1e3, lat[n * 99 / 100] / 1e3, lat[n - 1] / 1e3, chokes);
}

/* PORT or PORT_A,PORT_B. With two: one connection to each, requests alternating A B B A A B ... (each daemon first
 * in half of the pairs), one outstanding in all, GAP_US after every reply; each daemon's latencies kept apart. */
static int run_probe(int argc, char **argv, const uint8_t ih[20], uint32_t piece_len, uint32_t nblocks)
{
    if (argc < 8) return 1;
    long count = atol(argv[6]), gap_us = atol(argv[7]);
    const char *samples_file = argc > 8 ? argv[8] : NULL;
    int ports[2], nd = sscanf(argv[2], "%d,%d", &ports[0], &ports[1]);
    if (nd < 1 || count <= 0) return 1;
    int fd[2];
    uint64_t *lat[2];
    long n[2] = {0, 0}, chokes[2] = {0, 0}, sent[2] = {0, 0};
    for (int d = 0; d < nd; d++) {
        fd[d] = connect_from(NULL, ports[d], 0);
        handshake_unchoke(fd[d], ih);
        lat[d] = calloc((size_t)count, sizeof *lat[d]);
    }
    struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
    for (long i = 0; !g_stop; i++) {
        /* ABBA order: pair k sends to A first when k is even, so neither daemon always follows the other */
        int d = nd == 1 ? 0 : (int)((i & 1) ^ ((i >> 1) & 1));
        if (n[0] >= count && (nd == 1 || n[1] >= count)) break;
        int choked = 0;
        int64_t t = one_request(fd[d], (uint32_t)(sent[d] % nblocks), piece_len, &choked);
        if (t < 0) { chokes[d]++; continue; }
        if (sent[d]++ >= 200 && n[d] < count) lat[d][n[d]++] = (uint64_t)t;
        if (gap_us) nanosleep(&gap, NULL);
    }
    if (samples_file) {
        FILE *f = fopen(samples_file, "w");
        for (long i = 0; f && i < count; i++) {
            for (int d = 0; d < nd; d++) fprintf(f, d ? " %.3f" : "%.3f", i < n[d] ? lat[d][i] / 1e3 : -1.0);
            fprintf(f, "\n");
        }
        if (f) fclose(f);
    }
    for (int d = 0; d < nd; d++) print_stats(nd == 1 ? "" : d ? " B" : " A", lat[d], n[d], chokes[d]);
    return n[0] && (nd == 1 || n[1]) ? 0 : 2;
}

typedef struct lpeer {
    int fd;
    uint32_t next_block;
    long outstanding;
    double tokens;
    uint8_t hdr[4];
    uint32_t hdr_have, body_left; /* message parsing: header bytes held, body bytes still to skip */
    int body_is_piece;
} lpeer;

/* Reads at most budget bytes; returns PIECE messages completed. */
static long load_read(lpeer *p, size_t budget)
{
    static uint8_t buf[65536];
    long pieces = 0;
    if (budget > sizeof buf) budget = sizeof buf;
    ssize_t r = recv(p->fd, buf, budget, MSG_DONTWAIT);
    if (r == 0) { fprintf(stderr, "load: connection closed by seeder\n"); exit(2); }
    if (r < 0) return 0;
    p->tokens -= (double)r;
    for (ssize_t i = 0; i < r;) {
        if (p->body_left) {
            size_t take = (size_t)(r - i) < p->body_left ? (size_t)(r - i) : p->body_left;
            if (p->body_is_piece < 0) { p->body_is_piece = buf[i] == 7; }
            p->body_left -= (uint32_t)take;
            i += (ssize_t)take;
            if (!p->body_left && p->body_is_piece == 1) pieces++;
            continue;
        }
        p->hdr[p->hdr_have++] = buf[i++];
        if (p->hdr_have == 4) {
            p->hdr_have = 0;
            p->body_left = get32(p->hdr);
            p->body_is_piece = -1;
        }
    }
    return pieces;
}

static void load_send(lpeer *p, long n, uint32_t piece_len, uint32_t nblocks)
{
    static uint8_t out[17 * 4096];
    while (n > 0) {
        long k = n > 4096 ? 4096 : n;
        for (long j = 0; j < k; j++) request_msg(out + 17 * j, p->next_block++ % nblocks, piece_len);
        write_all(p->fd, out, (size_t)(17 * k));
        p->outstanding += k;
        n -= k;
    }
}

static int run_load(int argc, char **argv, const uint8_t ih[20], int port, uint32_t piece_len, uint32_t nblocks)
{
    if (argc < 10) return 1;
    int peers = atoi(argv[6]);
    long pending = atol(argv[7]);
    double rate = atof(argv[8]), hold = atof(argv[9]);
    lpeer *ps = calloc((size_t)peers, sizeof *ps);
    struct pollfd *pf = calloc((size_t)peers, sizeof *pf);
    for (int i = 0; i < peers; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.%d.%d.2", 1 + i / 256, i % 256);
        ps[i].fd = connect_from(src, port, 65536);
        handshake_unchoke(ps[i].fd, ih);
        ps[i].next_block = (uint32_t)i * 97u;
        load_send(&ps[i], pending, piece_len, nblocks);
        pf[i].fd = ps[i].fd;
    }
    long total = 0;
    for (int i = 0; i < peers; i++) total += ps[i].outstanding;
    printf("LOAD READY outstanding=%ld\n", total);
    fflush(stdout);
    uint64_t t0 = now_ns(), last = t0, last_print = t0;
    long pieces = 0;
    while (!g_stop && (now_ns() - t0) / 1e9 < hold) {
        for (int i = 0; i < peers; i++) pf[i].events = ps[i].tokens > 0 ? POLLIN : 0;
        poll(pf, (nfds_t)peers, 10);
        uint64_t t = now_ns();
        double dt = (t - last) / 1e9;
        last = t;
        for (int i = 0; i < peers; i++) {
            lpeer *p = &ps[i];
            p->tokens += rate * dt;
            if (p->tokens > rate / 10) p->tokens = rate / 10; /* at most 100 ms of burst */
            if (p->tokens > 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                long got = load_read(p, (size_t)p->tokens + 1);
                p->outstanding -= got;
                pieces += got;
                if (got) load_send(p, got, piece_len, nblocks);
            }
        }
        if (t - last_print >= 1000000000u) {
            total = 0;
            for (int i = 0; i < peers; i++) total += ps[i].outstanding;
            printf("LOAD outstanding=%ld pieces=%ld\n", total, pieces);
            fflush(stdout);
            last_print = t;
        }
    }
    printf("LOAD END pieces=%ld\n", pieces);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s probe|load PORT INFOHASH PIECE_LEN NBLOCKS ... (see the top of the source)\n",
                argv[0]);
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[2]);
    uint8_t ih[20];
    for (int i = 0; i < 20; i++) sscanf(argv[3] + 2 * i, "%2hhx", &ih[i]);
    uint32_t piece_len = (uint32_t)atol(argv[4]), nblocks = (uint32_t)atol(argv[5]);
    srand((unsigned)getpid());
    int rc = 1;
    if (!strcmp(argv[1], "probe")) rc = run_probe(argc, argv, ih, piece_len, nblocks);
    else if (!strcmp(argv[1], "load")) rc = run_load(argc, argv, ih, port, piece_len, nblocks);
    if (rc == 1) fprintf(stderr, "%s: bad arguments (see the top of the source)\n", argv[0]);
    return rc;
}
