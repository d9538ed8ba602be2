/* net_fixture: what the real backend's connection tests share: a connected TCP pair on 127.0.0.1 and a mapped
 * temporary file.
 *
 * Contract: each function asserts (Criterion) on any failure, so it returns only with what it promises.
 * nf_tcp_pair returns the accepted end, non-blocking (SO_SNDBUF sndbuf unless 0), and the connecting end in *peer,
 * non-blocking too (SO_RCVBUF rcvbuf unless 0). nf_map_temp_file writes len bytes of content to a new file made from
 * the mkstemp template in path (rewritten in place), keeps it open in *fd and returns a read-only shared mapping of it.
 */
#ifndef HEKATE_TEST_NET_FIXTURE_H
#define HEKATE_TEST_NET_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

int nf_tcp_pair(int sndbuf, int rcvbuf, int *peer);
uint8_t *nf_map_temp_file(char *path, const uint8_t *content, size_t len, int *fd);

#endif
