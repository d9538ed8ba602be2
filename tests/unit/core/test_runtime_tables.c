/* test_runtime_tables: each core object's runtime table is checked when the object is created: a table missing a
 * required member is refused (and the check names the member), optional members may be NULL. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "announcer.h"
#include "fake_runtime.h"
#include "seeder.h"

typedef struct member {
    size_t offset;
    const char *name;
} member;

#define SEEDER_MEMBER(field, text) { offsetof(hk_seeder_runtime, field), text }

static const member seeder_required[] = {
    SEEDER_MEMBER(base.now, "now"),
    SEEDER_MEMBER(base.wake_at, "wake_at"),
    SEEDER_MEMBER(base.random_bytes, "random_bytes"),
    SEEDER_MEMBER(send, "send"),
    SEEDER_MEMBER(close, "close"),
    SEEDER_MEMBER(disk_prefetch, "disk_prefetch"),
    SEEDER_MEMBER(disk_resident, "disk_resident"),
    SEEDER_MEMBER(disk_load, "disk_load"),
};

static void clear_member(void *table, size_t offset)
{
    void (*none)(void) = NULL;
    memcpy((char *)table + offset, &none, sizeof none);
}

Test(runtime_tables, seeder_refuses_a_table_without_a_required_member)
{
    fake_runtime *fr = fr_new(1);
    hk_config cfg;
    hk_config_defaults(&cfg);
    hk_seeder_runtime full = fr_runtime(fr);
    cr_assert_null(hk_seeder_runtime_check(&full));
    for (size_t i = 0; i < sizeof seeder_required / sizeof *seeder_required; i++) {
        hk_seeder_runtime rt = full;
        clear_member(&rt, seeder_required[i].offset);
        const char *why = hk_seeder_runtime_check(&rt);
        cr_assert_not_null(why, "%s", seeder_required[i].name);
        cr_assert_not_null(strstr(why, seeder_required[i].name), "'%s' names %s", why, seeder_required[i].name);
        cr_assert_null(hk_seeder_new(&cfg, &rt), "no seeder without %s", seeder_required[i].name);
    }
    cr_assert_null(hk_seeder_new(&cfg, NULL));
    hk_seeder_runtime quiet = full;
    quiet.base.log = NULL; /* optional */
    hk_seeder *s = hk_seeder_new(&cfg, &quiet);
    cr_assert_not_null(s);
    hk_seeder_free(s);
    fr_free(fr);
}

static hk_time t_now(void *ctx)
{
    (void)ctx;
    return HK_SECONDS(1);
}

static void t_wake_at(void *ctx, hk_time when)
{
    (void)ctx;
    (void)when;
}

static void t_random(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    memset(buf, 7, n);
}

Test(runtime_tables, announcer_needs_its_base_and_no_transport)
{
    hk_announcer_config cfg;
    hk_announcer_config_defaults(&cfg);
    hk_announcer_runtime full = { .base = { .now = t_now, .wake_at = t_wake_at, .random_bytes = t_random } };
    cr_assert_null(hk_announcer_runtime_check(&full), "transports and log are optional");
    hk_announcer *a = hk_announcer_new(&cfg, &full, NULL, NULL);
    cr_assert_not_null(a);
    static const uint8_t ih[20] = { 1 };
    static const char *const urls[] = { "http://tracker.example/announce", "udp://tracker.example:80" };
    static const uint32_t tiers[] = { 2 };
    cr_assert_eq(hk_announcer_add_torrent(a, ih, urls, tiers, 1), HK_ANN_NO_TRACKERS,
                 "without transports no tracker URL is usable");
    hk_announcer_free(a);

    static const size_t required[] = { offsetof(hk_announcer_runtime, base.now),
                                       offsetof(hk_announcer_runtime, base.wake_at),
                                       offsetof(hk_announcer_runtime, base.random_bytes) };
    static const char *const names[] = { "now", "wake_at", "random_bytes" };
    for (size_t i = 0; i < 3; i++) {
        hk_announcer_runtime rt = full;
        clear_member(&rt, required[i]);
        const char *why = hk_announcer_runtime_check(&rt);
        cr_assert_not_null(why);
        cr_assert_not_null(strstr(why, names[i]), "'%s' names %s", why, names[i]);
        cr_assert_null(hk_announcer_new(&cfg, &rt, NULL, NULL));
    }
    cr_assert_null(hk_announcer_new(&cfg, NULL, NULL, NULL));
}
