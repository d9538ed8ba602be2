/* Tests of backend-real's SIGBUS guard (backend-real/lib/disk/mapguard.h): reading a mapped page that its file no
 * longer backs returns EIO from hk_mapguard_run (the process lives, the guard can be used again, on other threads
 * too), a read that does not fault returns 0 with its work done, and hk_mapguard_populate reports a range past the end
 * of the file as EIO without any signal. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixtures.h"
#include "mapguard.h"

static char *g_dir;
static void setup(void) { g_dir = fx_mkdtemp("mapguard"); cr_assert_not_null(g_dir); }
static void teardown(void) { fx_rmtree(g_dir); free(g_dir); }
TestSuite(mapguard, .init = setup, .fini = teardown, .timeout = 30);

typedef struct sum_arg {
    const volatile uint8_t *p;
    size_t n;
    uint64_t sum;
    size_t done;                 /* bytes read before the fault (if any) */
} sum_arg;

static void sum_bytes(void *arg)
{
    sum_arg *a = arg;
    for (a->done = 0; a->done < a->n; a->done++)
        a->sum += a->p[a->done];
}

/* A file of `pages` pages of byte 1, mapped whole read-only; *fd open. */
static uint8_t *map_file(size_t pages, int *fd, size_t *len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    *len = pages * pg;
    uint8_t *data = malloc(*len);
    memset(data, 1, *len);
    char path[512];
    snprintf(path, sizeof path, "%s/f", g_dir);
    cr_assert_eq(fx_write(path, data, *len), 0);
    free(data);
    *fd = open(path, O_RDWR);
    cr_assert_geq(*fd, 0);
    uint8_t *m = mmap(NULL, *len, PROT_READ, MAP_SHARED, *fd, 0);
    cr_assert_neq(m, MAP_FAILED);
    return m;
}

Test(mapguard, a_read_past_the_shrunk_end_is_eio_and_the_guard_works_again)
{
    cr_assert_eq(hk_mapguard_init(), 0);
    int fd;
    size_t len, pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = map_file(4, &fd, &len);
    sum_arg whole = {.p = m, .n = len};
    cr_assert_eq(hk_mapguard_run(sum_bytes, &whole), 0);
    cr_assert_eq(whole.sum, len, "every byte read");
    cr_assert_eq(hk_mapguard_populate(m, len), 0);
    cr_assert_eq(ftruncate(fd, (off_t)pg), 0, "the file shrinks to one page under the mapping");
    cr_assert_eq(hk_mapguard_populate(m + pg, pg), EIO, "populate reports the vanished page, no signal");
    cr_assert_eq(hk_mapguard_populate(m, pg), 0, "the page still backed populates");
    for (int round = 0; round < 3; round++) {
        sum_arg a = {.p = m, .n = len};
        cr_assert_eq(hk_mapguard_run(sum_bytes, &a), EIO, "round %d: the fault is a return value", round);
        cr_assert_eq(a.done, pg, "round %d: cut at the first byte past the file's end", round);
        cr_assert_eq(a.sum, pg);
    }
    sum_arg head = {.p = m, .n = pg};
    cr_assert_eq(hk_mapguard_run(sum_bytes, &head), 0, "a read within the file still succeeds after faults");
    munmap(m, len);
    close(fd);
}

typedef struct thread_arg {
    const uint8_t *m;
    size_t len;
    int rc;
} thread_arg;

static void *fault_on_thread(void *arg)
{
    thread_arg *t = arg;
    sum_arg a = {.p = t->m, .n = t->len};
    t->rc = hk_mapguard_run(sum_bytes, &a);
    return NULL;
}

Test(mapguard, each_thread_has_its_own_guard)
{
    int fd;
    size_t len;
    uint8_t *m = map_file(2, &fd, &len);
    cr_assert_eq(ftruncate(fd, 0), 0);
    thread_arg t[2] = {{m, len, -1}, {m, len, -1}};
    pthread_t tid[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&tid[i], NULL, fault_on_thread, &t[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        cr_assert_eq(t[i].rc, EIO, "thread %d", i);
    }
    munmap(m, len);
    close(fd);
}
