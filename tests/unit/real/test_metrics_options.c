/* Tests of the metrics rows of backend-real/lib/options: --metrics (off by default, the address checked when parsed,
 * errors naming the option) and --metrics-top (default 10, 0 allowed, at most 1000). */
#include <criterion/criterion.h>

#include <string.h>

#include "metrics.h"
#include "options.h"

static hk_options_result run(hk_options *o, char *err, size_t errlen, const char *a1, const char *a2)
{
    static char s[4][128];
    char *argv[5];
    int argc = 0;
    const char *in[] = { "hekate", a1, a2, "d" };
    for (int i = 0; i < 4; i++)
        if (in[i]) {
            snprintf(s[argc], sizeof s[argc], "%s", in[i]);
            argv[argc] = s[argc];
            argc++;
        }
    argv[argc] = NULL;
    err[0] = '\0';
    return hk_options_parse(o, argc, argv, err, errlen);
}

Test(metrics_options, defaults_and_values)
{
    hk_options o;
    char err[512];
    cr_assert_eq(run(&o, err, sizeof err, NULL, NULL), HK_OPTIONS_RUN, "%s", err);
    cr_assert_null(o.metrics_addr, "off by default");
    cr_assert_eq(o.metrics_top, 10);
    cr_assert_eq(run(&o, err, sizeof err, "--metrics=9100", "--metrics-top=0"), HK_OPTIONS_RUN, "%s", err);
    cr_assert_str_eq(o.metrics_addr, "9100");
    cr_assert_eq(o.metrics_top, 0);
    cr_assert_eq(run(&o, err, sizeof err, "--metrics=[::1]:9100", "--metrics-top=1000"), HK_OPTIONS_RUN, "%s", err);
    cr_assert_eq(o.metrics_top, 1000);
}

Test(metrics_options, refusals)
{
    hk_options o;
    char err[512];
    cr_assert_eq(run(&o, err, sizeof err, "--metrics=localhost:9100", NULL), HK_OPTIONS_ERROR);
    cr_assert_not_null(strstr(err, "--metrics"), "%s", err);
    cr_assert_not_null(strstr(err, "localhost"), "%s", err);
    cr_assert_eq(run(&o, err, sizeof err, "--metrics=1.2.3.4:99999", NULL), HK_OPTIONS_ERROR);
    cr_assert_not_null(strstr(err, "--metrics"), "%s", err);
    cr_assert_eq(run(&o, err, sizeof err, "--metrics-top=1001", NULL), HK_OPTIONS_ERROR);
    cr_assert_not_null(strstr(err, "--metrics-top"), "%s", err);
}
