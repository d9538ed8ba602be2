/* paths: --data-dir and --follow-links handed to the store (see paths.h). */
#include "paths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "store.h"

static void say_data_dirs(const hk_options *opt)
{
    for (size_t i = 0; i < opt->data_dirs.n; i++) {
        struct stat st;
        const char *d = opt->data_dirs.v[i];
        int rc = stat(d, &st);
        if (rc != 0 || !S_ISDIR(st.st_mode))
            hk_log(HK_LOG_WARN, "--data-dir %s: %s; no data is found there until it is one", d,
                   rc == 0 ? "not a folder" : errno == ENOENT ? "missing" : strerror(errno));
        else
            hk_log(HK_LOG_DEBUG, "--data-dir %s: searched for data after the .torrent's own folder", d);
    }
}

bool paths_apply(hk_real *real, const hk_options *opt)
{
    say_data_dirs(opt);
    hk_store *st = hk_real_store(real);
    size_t n = opt->ndirs + opt->data_dirs.n;
    const char **roots = malloc((n ? n : 1) * sizeof *roots);
    bool ok = roots != NULL;
    if (ok) {
        for (size_t i = 0; i < opt->ndirs; i++)
            roots[i] = opt->dirs[i];
        for (size_t i = 0; i < opt->data_dirs.n; i++)
            roots[opt->ndirs + i] = opt->data_dirs.v[i];
        ok = hk_store_set_data_dirs(st, opt->data_dirs.v, opt->data_dirs.n) == 0 &&
             hk_store_set_links(st, opt->follow_links, roots, n) == 0;
    }
    free(roots);
    if (!ok)
        hk_log(HK_LOG_ERROR, "out of memory setting the data dirs and served folders");
    else if (opt->follow_links)
        hk_log(HK_LOG_DEBUG, "--follow-links: symbolic links are followed below the %zu served folder%s", n,
               n == 1 ? "" : "s");
    return ok;
}
