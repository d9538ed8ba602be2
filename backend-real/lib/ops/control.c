/* control: the control socket's server on libev (see control.h): the listening socket and its stale-file handling,
 * the clients (a fixed table of HK_CTL_MAX_CLIENTS slots), line framing with the size cap, and non-blocking
 * replies. What a request does is the handler's; parsing and JSON are control_proto.c's. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IN_CAP (HK_CTL_MAX_LINE + 2)     /* a line, a '\r' and its '\n' */

typedef struct client {
    hk_control *owner;
    int fd;
    ev_io rio, wio;
    ev_timer idle;
    char in[IN_CAP];
    size_t inlen;
    char *out;                           /* the reply being written (malloc'd), or NULL */
    size_t outlen, outoff;
    bool close_after;                    /* the reply said the line was too long: close once it is written */
} client;

struct hk_control {
    struct ev_loop *loop;
    int fd;
    ev_io accept_io;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    hk_ctl_handler handler;
    void *ud;
    client *slots[HK_CTL_MAX_CLIENTS];
    char *scratch;                       /* HK_CTL_MAX_REPLY bytes the handler writes into */
    hk_control_stats st;
};

static void client_close(client *cl)
{
    hk_control *c = cl->owner;
    ev_io_stop(c->loop, &cl->rio);
    ev_io_stop(c->loop, &cl->wio);
    ev_timer_stop(c->loop, &cl->idle);
    close(cl->fd);
    for (size_t i = 0; i < HK_CTL_MAX_CLIENTS; i++)
        if (c->slots[i] == cl)
            c->slots[i] = NULL;
    c->st.clients--;
    free(cl->out);
    free(cl);
}

/* Queues the text of w (an error if it overflowed) as cl's reply; reading stops until it is written. */
static void queue_reply(client *cl, hk_jw *w)
{
    if (w->overflow || w->len == 0 || w->buf[w->len - 1] != '\n')
        hk_ctl_error_reply(w, "reply too large for the control socket");
    cl->out = malloc(w->len);
    if (!cl->out) {
        cl->close_after = true; /* out of memory: nothing can be said; the client is closed */
        cl->outlen = cl->outoff = 0;
        return;
    }
    memcpy(cl->out, w->buf, w->len);
    cl->outlen = w->len;
    cl->outoff = 0;
    ev_io_stop(cl->owner->loop, &cl->rio);
    ev_io_start(cl->owner->loop, &cl->wio);
}

/* One line (without '\n') from cl: parsed, handled, its reply queued. */
static void handle_line(client *cl, const char *line, size_t len)
{
    hk_control *c = cl->owner;
    hk_jw w;
    hk_jw_init(&w, c->scratch, HK_CTL_MAX_REPLY);
    hk_ctl_request *req = malloc(sizeof *req);
    char err[256];
    c->st.requests++;
    if (!req) {
        hk_ctl_error_reply(&w, "out of memory");
    } else if (hk_ctl_parse(line, len, req, err, sizeof err) != 0) {
        c->st.bad_requests++;
        hk_ctl_error_reply(&w, err);
    } else {
        c->handler(c->ud, req, &w);
    }
    free(req);
    queue_reply(cl, &w);
}

/* Handles the buffered lines while no reply is pending; a buffer full without a '\n' is a line too long. */
static void process_input(client *cl)
{
    while (!cl->out && !cl->close_after) {
        char *nl = memchr(cl->in, '\n', cl->inlen);
        if (!nl) {
            if (cl->inlen == IN_CAP) {
                hk_jw w;
                hk_jw_init(&w, cl->owner->scratch, HK_CTL_MAX_REPLY);
                char msg[96];
                snprintf(msg, sizeof msg, "request too long (at most %u bytes); closing", HK_CTL_MAX_LINE);
                hk_ctl_error_reply(&w, msg);
                cl->owner->st.requests++;
                cl->owner->st.bad_requests++;
                queue_reply(cl, &w);
                cl->close_after = true;
            }
            return;
        }
        size_t len = (size_t)(nl - cl->in);
        handle_line(cl, cl->in, len);
        memmove(cl->in, nl + 1, cl->inlen - len - 1);
        cl->inlen -= len + 1;
    }
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    client *cl = w->data;
    ssize_t n = read(cl->fd, cl->in + cl->inlen, IN_CAP - cl->inlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_close(cl);
        return;
    }
    cl->inlen += (size_t)n;
    ev_timer_again(loop, &cl->idle);
    process_input(cl);
    if (!cl->out && cl->close_after)
        client_close(cl);
}

static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    client *cl = w->data;
    while (cl->outoff < cl->outlen) {
        ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            client_close(cl);
            return;
        }
        cl->outoff += (size_t)n;
    }
    free(cl->out);
    cl->out = NULL;
    ev_io_stop(loop, &cl->wio);
    ev_timer_again(loop, &cl->idle);
    if (cl->close_after) {
        client_close(cl);
        return;
    }
    process_input(cl);           /* lines that came with the last one */
    if (!cl->out && !cl->close_after)
        ev_io_start(loop, &cl->rio);
    else if (!cl->out)
        client_close(cl);
}

static void client_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    client_close(w->data);
}

/* One more client than there are slots: told so in one non-blocking write, closed. */
static void refuse_client(hk_control *c, int fd)
{
    static const char msg[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
    c->st.refused_clients++;
    ssize_t n = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    close(fd);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    hk_control *c = w->data;
    for (int k = 0; k < 64; k++) { /* a bounded batch per wake-up */
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the next wake-up tries again */
        size_t i = 0;
        while (i < HK_CTL_MAX_CLIENTS && c->slots[i])
            i++;
        client *cl = i < HK_CTL_MAX_CLIENTS ? calloc(1, sizeof *cl) : NULL;
        if (!cl) {
            refuse_client(c, fd);
            continue;
        }
        cl->owner = c;
        cl->fd = fd;
        ev_io_init(&cl->rio, client_read_cb, fd, EV_READ);
        ev_io_init(&cl->wio, client_write_cb, fd, EV_WRITE);
        ev_init(&cl->idle, client_idle_cb);
        cl->idle.repeat = HK_CTL_IDLE;
        cl->rio.data = cl->wio.data = cl->idle.data = cl;
        c->slots[i] = cl;
        c->st.clients++;
        ev_io_start(loop, &cl->rio);
        ev_timer_again(loop, &cl->idle);
    }
}

/* A file at path before bind: 0 if there is none or it was a stale socket (removed), else -1 with err set. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a socket; not replaced", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", path, strerror(errno));
        return -1;
    }
    int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    int e = errno;
    close(fd);
    if (r == 0) {
        snprintf(err, errlen, "%s: another process is listening on it (another hekate?)", path);
        return -1;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "%s: cannot tell whether it is in use: %s", path, strerror(e));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot remove the stale socket: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The listening socket bound at c->path with mode 0600: its descriptor, or -1 with err set. */
static int bind_socket(hk_control *c, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    if (clear_stale(c->path, &sa, err, errlen) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", c->path, strerror(errno));
        return -1;
    }
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    struct stat st;
    if (r != 0 || chmod(c->path, 0600) != 0 || listen(fd, 64) != 0 || lstat(c->path, &st) != 0) {
        e = r != 0 ? e : errno;
        snprintf(err, errlen, "%s: cannot listen: %s", c->path, strerror(e));
        if (r == 0)
            unlink(c->path);
        close(fd);
        return -1;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    return fd;
}

hk_control *hk_control_open(struct ev_loop *loop, const char *path, hk_ctl_handler handler, void *ud, char *err,
                            size_t errlen)
{
    hk_control *c = calloc(1, sizeof *c);
    if (!c || !(c->scratch = malloc(HK_CTL_MAX_REPLY))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(c);
        return NULL;
    }
    if (strlen(path) == 0 || strlen(path) >= sizeof c->path) {
        snprintf(err, errlen, "%s: a control socket path must be 1 to %zu bytes", path, sizeof c->path - 1);
        free(c->scratch);
        free(c);
        return NULL;
    }
    memcpy(c->path, path, strlen(path) + 1);
    c->loop = loop;
    c->handler = handler;
    c->ud = ud;
    c->fd = bind_socket(c, err, errlen);
    if (c->fd < 0) {
        free(c->scratch);
        free(c);
        return NULL;
    }
    ev_io_init(&c->accept_io, accept_cb, c->fd, EV_READ);
    c->accept_io.data = c;
    ev_io_start(loop, &c->accept_io);
    return c;
}

void hk_control_close(hk_control *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < HK_CTL_MAX_CLIENTS; i++)
        if (c->slots[i])
            client_close(c->slots[i]);
    ev_io_stop(c->loop, &c->accept_io);
    close(c->fd);
    struct stat st;
    if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    free(c->scratch);
    free(c);
}

void hk_control_stats_get(const hk_control *c, hk_control_stats *out)
{
    *out = c->st;
}
