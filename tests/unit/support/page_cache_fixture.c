/* page_cache_fixture: drop a file range from the page cache and confirm it with mincore (see the header). */
#define _DEFAULT_SOURCE
#include "page_cache_fixture.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { DROP_ATTEMPTS = 200, DROP_PAUSE_US = 10000 };

/* Resident pages of fd in [off, off+len) (len 0: to the end), or -1 on error. */
static long resident_in(int fd, uint64_t off, uint64_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    if (off >= size)
        return 0;
    uint64_t end = len == 0 || off + len > size ? size : off + len;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t first = off / (uint64_t)page * (uint64_t)page;
    size_t span = (size_t)(end - first);
    void *m = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)first);
    if (m == MAP_FAILED)
        return -1;
    size_t pages = (span + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    long resident = -1;
    if (vec && mincore(m, span, vec) == 0) {
        resident = 0;
        for (size_t i = 0; i < pages; i++)
            resident += vec[i] & 1;
    }
    free(vec);
    munmap(m, span);
    return resident;
}

long pc_resident_pages(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = resident_in(fd, 0, 0);
    close(fd);
    return n;
}

int pc_range_resident(const char *path, uint64_t off, uint64_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || len == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    long page = sysconf(_SC_PAGESIZE);
    long want = (long)((off + len + (uint64_t)page - 1) / (uint64_t)page - off / (uint64_t)page);
    long n = resident_in(fd, off, len);
    close(fd);
    return n < 0 ? -1 : n == want;
}

void pc_drop(const char *path, uint64_t off, uint64_t len)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s", path);
    long resident = -1;
    for (int attempt = 0; attempt < DROP_ATTEMPTS; attempt++) {
        fdatasync(fd);
        cr_assert_eq(posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED), 0);
        resident = resident_in(fd, off, len);
        if (resident == 0)
            break;
        usleep(DROP_PAUSE_US);
    }
    close(fd);
    cr_assert_eq(resident, 0, "%ld pages of %s stay in the page cache after %d drops", resident, path, DROP_ATTEMPTS);
}
