/* control: the control socket (--control=PATH): a Unix stream socket on the event loop that reads request lines
 * (control_proto.h) and writes one JSON reply line each.
 *
 * Contract
 * --------
 * hk_control_open binds PATH with mode 0600 (the umask is narrowed around bind(2), then chmod makes it exact).
 * A file already at PATH: a socket nobody listens on (a stale one from a crash: connect(2) is refused) is removed
 * and replaced; a socket someone answers on, or anything that is not a socket, is an error and left alone.
 * At most HK_CTL_MAX_CLIENTS clients at once: one more is sent {"ok":false,"error":"too many control clients"} (one
 * non-blocking write) and closed. Each client's requests are handled one at a time, in order, on the loop thread:
 * a request is parsed (hk_ctl_parse) and, if valid, handed to the handler, which writes its whole reply (ending in
 * '\n') into a writer of HK_CTL_MAX_REPLY bytes; a reply that does not fit is replaced by an error. A request line
 * longer than HK_CTL_MAX_LINE gets an error reply and the client is closed once it is written; an invalid one gets
 * an error reply and the client may go on. Reading stops while a reply is being written (non-blocking writes), so a
 * client that does not read holds at most one reply. A client silent for HK_CTL_IDLE seconds, or whose reply has not
 * drained in that time, is closed. Nothing a client sends affects other clients or the serving.
 * hk_control_close closes every client and the socket and removes PATH if it is still the socket bound.
 * Returns: hk_control_open NULL with err set (naming PATH) on failure.
 */
#ifndef HEKATE_CONTROL_H
#define HEKATE_CONTROL_H

#include <ev.h>
#include <stddef.h>

#include "control_proto.h"

#define HK_CTL_MAX_CLIENTS 16
#define HK_CTL_MAX_REPLY (512u * 1024)   /* bytes of one reply */
#define HK_CTL_IDLE 30.0                 /* seconds */

typedef struct hk_control hk_control;

/* Writes the whole reply to req into w (hk_jw_*), ending in '\n'. Runs on the loop thread. */
typedef void (*hk_ctl_handler)(void *ud, const hk_ctl_request *req, hk_jw *w);

hk_control *hk_control_open(struct ev_loop *loop, const char *path, hk_ctl_handler handler, void *ud, char *err,
                            size_t errlen);
void hk_control_close(hk_control *c);    /* NULL is a no-op */

typedef struct hk_control_stats {
    unsigned clients;                    /* connected now */
    unsigned long long requests, bad_requests, refused_clients;
} hk_control_stats;
void hk_control_stats_get(const hk_control *c, hk_control_stats *out);

#endif
