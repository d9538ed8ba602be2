/* hekatectl: the client of hekate's control socket (--control=PATH; protocol in backend-real/lib/ops/control_proto.h).
 * It sends one request line, reads the one JSON line that answers it, and prints it as it is (--json) or as a
 * readable listing: scalar members as "name  value" lines, a list of objects (torrents) as a table, an object
 * (torrent) as indented lines. A small JSON reader (below) is enough for hekate's replies: objects, arrays, strings,
 * numbers, true, false, null, nested at most 16 deep.
 * --json (-j) may also follow the command.
 * Exit status: 0 the request succeeded; 1 hekate refused it (its error is printed on stderr) or could not be reached;
 * 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST 4096          /* hekate's cap (HK_CTL_MAX_LINE) */
#define MAX_REPLY (1u << 20)      /* hekate's replies are at most 512 KiB */
#define TIMEOUT_MS 10000
#define MAX_DEPTH 16

static const char *prog = "hekatectl";

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [-s PATH] [--json] COMMAND [ARG]...\n"
            "Ask a running hekate (started with --control=PATH) over its control socket.\n"
            "\n"
            "Commands:\n"
            "  status                  version, uptime, torrents, peers, bytes sent, rescans\n"
            "  torrents [--top N]      the N torrents that uploaded most (default 20, at most 1000)\n"
            "  torrent INFOHASH        one torrent: path, state, peers, bytes uploaded\n"
            "  peers                   peers by state\n"
            "  add PATH                serve one .torrent file below one of hekate's folders\n"
            "  remove INFOHASH         stop serving a torrent (a later rescan adds it again if its file is there)\n"
            "  rescan                  rescan every folder, as SIGHUP does\n"
            "  verify INFOHASH         check every piece of a torrent again (in the background, at --verify-rate)\n"
            "  reload-config           (not supported yet)\n"
            "\n"
            "Options:\n"
            "  -s, --socket=PATH       the control socket (default: $HEKATE_CONTROL)\n"
            "  -j, --json              print hekate's JSON reply as it is\n"
            "  -h, --help              show this help and exit\n"
            "\n"
            "Exit status: 0 on success, 1 when hekate refused the request or cannot be reached, 2 on a usage error.\n",
            prog);
}

/* ---- a small JSON reader ---- */

typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jv {
    jtype type;
    char *text;                   /* J_STR: decoded; J_NUM, J_BOOL: as written */
    size_t n;                     /* J_ARR, J_OBJ: members */
    char **keys;                  /* J_OBJ */
    struct jv *items;
} jv;

typedef struct jreader {
    const char *p, *end;
    bool bad;
} jreader;

static void skip_ws(jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | cp >> 6);
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xe0 | cp >> 12);
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* A string at r->p (past its opening quote): malloc'd and decoded, or NULL (r->bad). */
static char *read_string(jreader *r)
{
    char *out = malloc((size_t)(r->end - r->p) * 3 + 1);
    size_t o = 0;
    while (out && r->p < r->end && *r->p != '"') {
        char c = *r->p++;
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (r->p >= r->end)
            break;
        char e = *r->p++;
        const char *plain = strchr("\"\\/bfnrt", e);
        if (plain && e) {
            out[o++] = "\"\\/\b\f\n\r\t"[plain - "\"\\/bfnrt"];
        } else if (e == 'u' && r->end - r->p >= 4) {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                char h = *r->p++;
                cp = cp * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 0);
            }
            put_utf8(out, &o, cp);
        } else {
            break;
        }
    }
    if (!out || r->p >= r->end) {
        free(out);
        r->bad = true;
        return NULL;
    }
    r->p++; /* the closing quote */
    out[o] = '\0';
    return out;
}

static void jv_free(jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->text);
}

static bool read_value(jreader *r, jv *v, int depth);

/* The members of an array or object, after its opening bracket. */
static bool read_members(jreader *r, jv *v, int depth, char close)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        jv *items = realloc(v->items, (v->n + 1) * sizeof *items);
        char **keys = v->type == J_OBJ ? realloc(v->keys, (v->n + 1) * sizeof *keys) : NULL;
        if (!items || (v->type == J_OBJ && !keys))
            return false;
        v->items = items;
        if (keys)
            v->keys = keys;
        skip_ws(r);
        if (v->type == J_OBJ) {
            if (r->p >= r->end || *r->p++ != '"' || !(v->keys[v->n] = read_string(r)))
                return false;
            skip_ws(r);
            if (r->p >= r->end || *r->p++ != ':') {
                free(v->keys[v->n]);
                return false;
            }
        }
        if (!read_value(r, &v->items[v->n], depth + 1)) {
            if (v->type == J_OBJ)
                free(v->keys[v->n]);
            return false;
        }
        v->n++;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        return r->p < r->end && *r->p++ == close;
    }
}

static bool read_value(jreader *r, jv *v, int depth)
{
    memset(v, 0, sizeof *v);
    skip_ws(r);
    if (r->p >= r->end || depth > MAX_DEPTH)
        return false;
    char c = *r->p;
    if (c == '{' || c == '[') {
        r->p++;
        v->type = c == '{' ? J_OBJ : J_ARR;
        if (read_members(r, v, depth, c == '{' ? '}' : ']'))
            return true;
        jv_free(v);
        memset(v, 0, sizeof *v);
        return false;
    }
    if (c == '"') {
        r->p++;
        v->type = J_STR;
        return (v->text = read_string(r)) != NULL;
    }
    const char *s = r->p;
    while (r->p < r->end && strchr("0123456789+-.eEtruefalsn", *r->p))
        r->p++;
    if (r->p == s)
        return false;
    v->text = strndup(s, (size_t)(r->p - s));
    v->type = c == 't' || c == 'f' ? J_BOOL : c == 'n' ? J_NULL : J_NUM;
    return v->text != NULL;
}

static const jv *member(const jv *obj, const char *key)
{
    for (size_t i = 0; obj->type == J_OBJ && i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

static const char *scalar(const jv *v)
{
    return v->type == J_NULL ? "-" : v->text ? v->text : (v->type == J_ARR ? "[...]" : "{...}");
}

/* ---- the readable listing ---- */

static void print_table(const jv *arr)
{
    if (arr->n == 0) {
        printf("(none)\n");
        return;
    }
    const jv *first = &arr->items[0];
    if (first->type != J_OBJ) {
        for (size_t i = 0; i < arr->n; i++)
            printf("%s\n", scalar(&arr->items[i]));
        return;
    }
    size_t cols = first->n, width[64] = { 0 };
    if (cols > 64)
        cols = 64;
    for (size_t c = 0; c < cols; c++) {
        width[c] = strlen(first->keys[c]);
        for (size_t i = 0; i < arr->n; i++) {
            const jv *cell = member(&arr->items[i], first->keys[c]);
            size_t w = cell ? strlen(scalar(cell)) : 1;
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t c = 0; c < cols; c++)
        printf("%-*s%s", c + 1 < cols ? (int)width[c] : 0, first->keys[c], c + 1 < cols ? "  " : "\n");
    for (size_t i = 0; i < arr->n; i++)
        for (size_t c = 0; c < cols; c++) {
            const jv *cell = member(&arr->items[i], first->keys[c]);
            printf("%-*s%s", c + 1 < cols ? (int)width[c] : 0, cell ? scalar(cell) : "-", c + 1 < cols ? "  " : "\n");
        }
}

static void print_object(const jv *obj, int indent)
{
    size_t w = 0;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->items[i].type != J_ARR && strlen(obj->keys[i]) > w)
            w = strlen(obj->keys[i]);
    for (size_t i = 0; i < obj->n; i++) {
        const jv *v = &obj->items[i];
        if (indent == 0 && strcmp(obj->keys[i], "ok") == 0)
            continue;
        if (v->type == J_ARR) {
            printf("%*s%s:\n", indent, "", obj->keys[i]);
            print_table(v);
        } else if (v->type == J_OBJ) {
            printf("%*s%s:\n", indent, "", obj->keys[i]);
            print_object(v, indent + 2);
        } else {
            printf("%*s%-*s  %s\n", indent, "", (int)w, obj->keys[i], scalar(v));
        }
    }
}

/* ---- the request ---- */

/* The request line for argv[0..argc) (the command and its arguments) into out: 0, or -1 after saying why. A relative
 * `add` path is made absolute from the current folder (hekate's may differ). */
static int build_request(int argc, char **argv, char *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        char abs[PATH_MAX + 2];
        const char *arg = argv[i];
        if (i == 1 && strcmp(argv[0], "add") == 0 && arg[0] != '/') {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd) || snprintf(abs, sizeof abs, "%s/%s", cwd, arg) >= (int)sizeof abs) {
                fprintf(stderr, "%s: add: cannot make %s absolute\n", prog, arg);
                return -1;
            }
            arg = abs;
        }
        if (strpbrk(arg, "\r\n")) {
            fprintf(stderr, "%s: an argument holds a line break\n", prog);
            return -1;
        }
        int k = snprintf(out + n, cap - n, "%s%s", i ? " " : "", arg);
        if (k < 0 || (size_t)k >= cap - n) {
            fprintf(stderr, "%s: request too long (at most %d bytes)\n", prog, MAX_REQUEST);
            return -1;
        }
        n += (size_t)k;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Waits for fd to be ready for `events` until the deadline: true if it is. */
static bool wait_fd(int fd, short events, double deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        double left = deadline - now_ms();
        if (left <= 0)
            return false;
        int r = poll(&p, 1, (int)left + 1);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* Sends line + '\n' to the socket at path and reads the reply line into a malloc'd string (without its '\n'); NULL
 * after saying why. */
static char *ask(const char *path, const char *line)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: %s: socket path too long\n", prog, path);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", prog, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    double deadline = now_ms() + TIMEOUT_MS;
    size_t len = strlen(line), off = 0;
    char *req = malloc(len + 1), *reply = malloc(MAX_REPLY + 1);
    const char *fail = NULL;
    if (!req || !reply)
        fail = "out of memory";
    else
        memcpy(req, line, len), req[len++] = '\n';
    while (!fail && off < len) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k > 0)
            off += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR)
            fail = strerror(errno);
        else if (!wait_fd(fd, POLLOUT, deadline))
            fail = "timed out sending the request";
    }
    size_t got = 0;
    while (!fail && !(got && reply[got - 1] == '\n')) {
        ssize_t k = got < MAX_REPLY ? read(fd, reply + got, MAX_REPLY - got) : 0;
        if (k > 0)
            got += (size_t)k;
        else if (k == 0)
            fail = got ? "the reply was cut short" : "hekate closed the connection without a reply";
        else if (errno != EAGAIN && errno != EINTR)
            fail = strerror(errno);
        else if (!wait_fd(fd, POLLIN, deadline))
            fail = "timed out waiting for the reply";
    }
    close(fd);
    free(req);
    if (fail) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, fail);
        free(reply);
        return NULL;
    }
    reply[got - 1] = '\0';
    return reply;
}

/* Prints the reply; the exit status. */
static int show(const char *reply, bool json)
{
    jreader r = { reply, reply + strlen(reply), false };
    jv v;
    bool parsed = read_value(&r, &v, 0);
    if (parsed && v.type != J_OBJ) {
        jv_free(&v);
        parsed = false;
    }
    if (!parsed) {
        fprintf(stderr, "%s: hekate's reply is not a JSON object: %.200s\n", prog, reply);
        return 1;
    }
    const jv *ok = member(&v, "ok");
    bool success = ok && ok->type == J_BOOL && strcmp(ok->text, "true") == 0;
    if (json) {
        printf("%s\n", reply);
    } else if (success) {
        print_object(&v, 0);
    }
    if (!success) {
        const jv *e = member(&v, "error");
        fprintf(stderr, "%s: %s\n", prog, e && e->type == J_STR ? e->text : "the request failed");
    }
    jv_free(&v);
    return success ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = getenv("HEKATE_CONTROL");
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "Try '%s --help' for more information.\n", prog); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: no command given\nTry '%s --help' for more information.\n", prog, prog);
        return 2;
    }
    if (!path || !*path) {
        fprintf(stderr, "%s: no control socket: give -s PATH (or set HEKATE_CONTROL)\n", prog);
        return 2;
    }
    int n = 0; /* --json (or -j) after the command too: `hekatectl status --json` */
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
            json = true;
        else
            argv[optind + n++] = argv[i];
    }
    char line[MAX_REQUEST + 1];
    if (build_request(n, argv + optind, line, sizeof line) != 0)
        return 2;
    char *reply = ask(path, line);
    if (!reply)
        return 1;
    int status = show(reply, json);
    free(reply);
    return status;
}
