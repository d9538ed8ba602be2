/* net_fixture: the TCP pair and mapped file of the connection tests (see net_fixture.h). */
#define _GNU_SOURCE
#include "net_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int nf_tcp_pair(int sndbuf, int rcvbuf, int *peer)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(ls, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(ls, 4), 0);
    socklen_t al = sizeof a;
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    *peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(*peer, 0);
    if (rcvbuf)
        cr_assert_eq(setsockopt(*peer, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    cr_assert_eq(connect(*peer, (struct sockaddr *)&a, sizeof a), 0);
    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    cr_assert_geq(fd, 0);
    close(ls);
    if (sndbuf)
        cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    fcntl(*peer, F_SETFL, fcntl(*peer, F_GETFL) | O_NONBLOCK);
    return fd;
}

uint8_t *nf_map_temp_file(char *path, const uint8_t *content, size_t len, int *fd)
{
    *fd = mkstemp(path);
    cr_assert_geq(*fd, 0);
    cr_assert_eq(write(*fd, content, len), (ssize_t)len);
    uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED, *fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    return map;
}
