/* fixtures: helpers for unit tests that need files and processes (tests may do I/O; core/ may not).
 * Temporary directories live under /tmp and are removed by fx_rmtree; commands run through /bin/sh. Every helper
 * reports failure by its return value (NULL or -1), never by exiting, so the test can assert on it. */
#ifndef HEKATE_TEST_FIXTURES_H
#define HEKATE_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory "/tmp/hekate-<tag>-XXXXXX"; returns its malloc'd path, or NULL. */
char *fx_mkdtemp(const char *tag);

/* Removes a directory made by fx_mkdtemp and everything in it (refuses any path outside /tmp/hekate-). */
void fx_rmtree(const char *dir);

/* Reads a whole file into a malloc'd buffer (NUL-terminated one byte past *len). NULL on error. */
uint8_t *fx_read(const char *path, size_t *len);

/* Writes len bytes to path (created or truncated). Returns 0, or -1 on error. */
int fx_write(const char *path, const void *data, size_t len);

/* Runs a shell command built like printf. Returns its exit status, or -1 if it could not run or was killed. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
int fx_sh(const char *fmt, ...);

/* Runs a shell command built like printf and returns its standard output (malloc'd, NUL-terminated), with its exit
 * status in *status (-1 if killed). NULL if it could not run. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
char *fx_sh_output(int *status, const char *fmt, ...);

/* In dir: d/big (100,000 bytes), d/small (20,000) and d/tiny (5,000) of random data and h.torrent, a hybrid (v1 + v2,
 * BEP 52) .torrent of d made by libtorrent's creator (Debian's python3-libtorrent; it pads each file to the piece
 * size). Returns 0, or the creator's exit status (-1 if it could not run). */
int fx_make_lt_hybrid(const char *dir, uint32_t piece_length);

#endif
