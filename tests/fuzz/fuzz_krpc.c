/* Fuzz target for core/krpc: any datagram either fails with a named reason or decodes into a message whose fields
 * are within their bounds; a decoded query re-encodes and decodes to the same method, ids and arguments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "krpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bounds(const krpc_msg *m)
{
    if (m->tid_len == 0 || m->tid_len > KRPC_MAX_TID || m->token_len > KRPC_MAX_TOKEN || m->nvalues > KRPC_MAX_VALUES)
        abort();
    if (m->nodes_len % KRPC_NODE4 || m->nodes6_len % KRPC_NODE6)
        abort();
    for (unsigned i = 0; i < m->nvalues; i++)
        if (m->values_len[i] != 6 && m->values_len[i] != 18)
            abort();
}

static void check_requery(const krpc_msg *m)
{
    krpc_query q = { .method = m->method, .tid = m->tid, .tid_len = m->tid_len, .id = m->id, .target = m->target,
                     .token = m->token, .token_len = m->token_len, .port = m->port,
                     .implied_port = m->implied_port, .want = m->want };
    uint8_t buf[KRPC_MAX_DATAGRAM];
    size_t n = krpc_put_query(buf, sizeof buf, &q);
    krpc_msg back;
    if (n == 0 || krpc_decode(buf, n, &back) != KRPC_OK)
        abort();
    if (back.method != m->method || memcmp(back.id, m->id, 20) || back.want != m->want ||
        (m->method != KRPC_PING && memcmp(back.target, m->target, 20)))
        abort();
    if (m->method == KRPC_ANNOUNCE_PEER && (back.port != m->port || back.implied_port != m->implied_port ||
                                            back.token_len != m->token_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    krpc_msg m;
    int rc = krpc_decode(data, size, &m);
    if (rc != KRPC_OK) {
        if (!m.why || (rc != KRPC_EMALFORMED && m.tid_len == 0))
            abort();
        return 0;
    }
    check_bounds(&m);
    if (m.type == KRPC_QUERY)
        check_requery(&m);
    return 0;
}
