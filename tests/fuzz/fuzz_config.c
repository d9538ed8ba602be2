/* Fuzz target for hekate's config file (backend-real/lib/config_file.c through hk_options_parse_text): libinih
 * fed line by line, the key -> option row mapping, the option parsers on file values, duplicates, sections, the DIR
 * list and the rules between options, with a command line on top.
 *
 * Input: the first byte picks one of a few command lines (none, operands, options that replace file keys); the
 * rest is the file's text (NUL bytes included). The parse must return RUN or ERROR (never HELP or VERSION: no
 * command line here asks for them) and never exit or print:
 *   RUN    at least one DIR, each one either an operand or a text that occurs in the input; the seeder
 *          configuration accepted by hk_config_check, --max-peers >= --max-unchoked, the port advertised;
 *   ERROR  a message; when it names the file ("fuzz.conf:LINE: ...") the line is one of the input's lines.
 * The parse runs twice with the same result (libinih's and getopt's global state are reset), and every result is
 * freed (libFuzzer's leak check catches what a path forgets). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const lines[][6] = {
    { NULL },
    { "/op/dir", NULL },
    { "-p", "7000", "-q", "-6", "/op/dir", NULL },
    { "-N", "3", "--max-peers=9", "-v", NULL },
};
#define NLINES (sizeof lines / sizeof *lines)

static size_t count_lines(const uint8_t *text, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

static void check(hk_options_result res, const hk_options *o, const uint8_t *text, size_t len, const char *err)
{
    if (res == HK_OPTIONS_ERROR) {
        if (!err[0])
            abort();
        if (strncmp(err, "fuzz.conf:", 10) == 0) {
            unsigned long line = strtoul(err + 10, NULL, 10);
            if (line == 0 || line > count_lines(text, len))
                abort();
        }
        return;
    }
    if (res != HK_OPTIONS_RUN || o->ndirs == 0 || !o->dirs)
        abort();
    for (size_t i = 0; i < o->ndirs; i++) {
        size_t n = strlen(o->dirs[i]);
        if (n == 0 || (strcmp(o->dirs[i], "/op/dir") != 0 && !memmem(text, len, o->dirs[i], n)))
            abort();
    }
    if (hk_config_check(&o->cfg) != NULL || o->cfg.max_peers < o->cfg.max_unchoked || o->cfg.listen_port != o->port)
        abort();
    if (o->bind_addr && !memmem(text, len, o->bind_addr, strlen(o->bind_addr)))
        abort();
    (void)hk_options_log_level(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *const *pick = lines[data[0] % NLINES];
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    char *copy = malloc(len + 1); /* its own allocation, so a read past the text is caught */
    memcpy(copy, text, len);
    copy[len] = '\0';
    hk_options_result first = HK_OPTIONS_ERROR;
    for (int round = 0; round < 2; round++) {
        char *argv[8];
        char store[8][16];
        int argc = 0;
        strcpy(store[argc], "hekate");
        argv[argc] = store[argc];
        for (argc = 1; pick[argc - 1]; argc++) {
            strcpy(store[argc], pick[argc - 1]);
            argv[argc] = store[argc];
        }
        argv[argc] = NULL;
        hk_options o;
        char err[1024] = "";
        hk_options_result res = hk_options_parse_text(&o, argc, argv, "fuzz.conf", copy, len, err, sizeof err);
        check(res, &o, text, len, err);
        if (res == HK_OPTIONS_RUN)
            hk_options_free(&o);
        if (round == 0)
            first = res;
        else if (res != first)
            abort();
    }
    free(copy);
    return 0;
}
