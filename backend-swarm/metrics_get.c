/* metrics_get: owns hekate-swarm's one HTTP request to the seeder's /metrics (see metrics_get.h). */
#include "metrics_get.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BODY_MAX (1u << 20)

int metrics_get(const struct sockaddr_in *addr, const char *name, double *value)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char *body = malloc(BODY_MAX + 1);
    size_t n = 0;
    if (body && connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0 &&
        send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
        ssize_t k;
        while (n < BODY_MAX && (k = recv(fd, body + n, BODY_MAX - n, 0)) > 0)
            n += (size_t)k;
    }
    close(fd);
    if (!body)
        return -1;
    body[n] = '\0';
    int rc = -1;
    size_t len = strlen(name);
    for (char *line = body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, len) == 0 && line[len] == ' ') {
            char *end;
            *value = strtod(line + len + 1, &end);
            rc = end > line + len + 1 ? 0 : -1;
            break;
        }
    free(body);
    return rc;
}
