/* Tests of backend-real/lib/ops/privdrop (issue 11 item 4, --user/--group): name resolution (a name, a number, the
 * user's primary group, a group alone), the errors naming the user or group, and the drop itself: as root (id -u 0,
 * e.g. in CI containers) to nobody, checked through getresuid and a setuid(0) that must then fail; as another user, a
 * drop to root that must fail with an error naming it. Criterion runs each test in its own process, so a drop does
 * not outlive its test. */
#include <criterion/criterion.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"

Test(privdrop, nothing_asked_nothing_done)
{
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, NULL, NULL, err, sizeof err), 0);
    cr_assert(!p.set_uid && !p.set_gid);
    uid_t before = geteuid();
    cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), 0);
    cr_assert_eq(geteuid(), before);
}

Test(privdrop, a_user_name_gives_its_uid_and_primary_group)
{
    struct passwd *pw = getpwnam("nobody");
    cr_assert_not_null(pw, "this test needs the user nobody");
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, "nobody", NULL, err, sizeof err), 0, "%s", err);
    cr_assert(p.set_uid && p.set_gid);
    cr_assert_eq(p.uid, pw->pw_uid);
    cr_assert_eq(p.gid, pw->pw_gid);
    cr_assert_str_eq(p.user_name, "nobody");
}

Test(privdrop, a_uid_number_and_a_group_name)
{
    struct group *gr = getgrnam("root");
    cr_assert_not_null(gr);
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, "0", "root", err, sizeof err), 0, "%s", err);
    cr_assert_eq(p.uid, 0);
    cr_assert_eq(p.gid, gr->gr_gid);
    cr_assert_eq(hk_privdrop_resolve(&p, NULL, "12345", err, sizeof err), 0, "%s", err); /* a bare gid */
    cr_assert(!p.set_uid && p.set_gid && p.gid == 12345);
}

Test(privdrop, unknown_names_are_errors_naming_them)
{
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, "no-such-user-hekate", NULL, err, sizeof err), -1);
    cr_assert_str_eq(err, "--user: no such user 'no-such-user-hekate'");
    cr_assert_eq(hk_privdrop_resolve(&p, "nobody", "no-such-group-hekate", err, sizeof err), -1);
    cr_assert_str_eq(err, "--group: no such group 'no-such-group-hekate'");
    cr_assert_eq(hk_privdrop_resolve(&p, "", NULL, err, sizeof err), -1);
    cr_assert_str_eq(err, "--user: empty user name");
    cr_assert_eq(hk_privdrop_resolve(&p, NULL, "", err, sizeof err), -1);
    cr_assert_str_eq(err, "--group: empty group name");
}

Test(privdrop, a_uid_without_an_entry_needs_a_group)
{
    cr_assert_null(getpwuid(4012345678u));
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, "4012345678", NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "uid 4012345678 has no entry") && strstr(err, "--group"), "%s", err);
    cr_assert_eq(hk_privdrop_resolve(&p, "4012345678", "4012345678", err, sizeof err), 0, "%s", err);
}

Test(privdrop, the_drop_is_checked)
{
    hk_privdrop p;
    char err[256] = "";
    if (getuid() == 0) { /* root: to nobody, for good */
        struct passwd *pw = getpwnam("nobody");
        cr_assert_not_null(pw);
        cr_assert_eq(hk_privdrop_resolve(&p, "nobody", NULL, err, sizeof err), 0, "%s", err);
        cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), 0, "%s", err);
        uid_t r, e, s;
        cr_assert_eq(getresuid(&r, &e, &s), 0);
        cr_assert(r == pw->pw_uid && e == pw->pw_uid && s == pw->pw_uid);
        cr_assert_eq(getegid(), pw->pw_gid);
        cr_assert_neq(setuid(0), 0, "root came back after the drop");
        gid_t groups[64];
        int n = getgroups(64, groups);
        for (int i = 0; i < n; i++)
            cr_assert_neq(groups[i], 0, "the root group is still a supplementary group");
    } else { /* not root: becoming root must fail, and say whom it could not become */
        cr_assert_eq(hk_privdrop_resolve(&p, "root", NULL, err, sizeof err), 0, "%s", err);
        cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), -1);
        cr_assert(strstr(err, "cannot drop privileges to user 'root'"), "%s", err);
        cr_assert_neq(getuid(), 0);
    }
}

Test(privdrop, a_failed_drop_names_the_user_and_the_step)
{
    if (getuid() != 0) { /* as a user, any other uid is refused by the kernel */
        hk_privdrop p;
        char err[256] = "";
        cr_assert_eq(hk_privdrop_resolve(&p, "4012345678", "4012345678", err, sizeof err), 0);
        cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), -1);
        cr_assert(strstr(err, "cannot drop privileges to user '4012345678' and group '4012345678': setgroups"), "%s",
                  err);
        return;
    }
    /* as root: first drop to nobody, then a drop to another user must fail (no privilege left) */
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, "nobody", NULL, err, sizeof err), 0);
    cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(hk_privdrop_resolve(&p, "root", NULL, err, sizeof err), 0);
    cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot drop privileges to user 'root': setgroups: Operation not permitted"), "%s", err);
}

/* Not root and already the user asked for (hekate --user=$USER in a script): nothing to change, not an error. As
 * root, becoming root is a real (and successful) drop to root's own ids. */
Test(privdrop, already_the_user_asked_for)
{
    struct passwd *pw = getpwuid(getuid());
    cr_assert_not_null(pw);
    char name[64];
    snprintf(name, sizeof name, "%s", pw->pw_name);
    gid_t gid = pw->pw_gid;
    hk_privdrop p;
    char err[256] = "";
    cr_assert_eq(hk_privdrop_resolve(&p, name, NULL, err, sizeof err), 0, "%s", err);
    if (getgid() != gid) /* started with another group than the user's own: then it is a change */
        return;
    cr_assert_eq(hk_privdrop_apply(&p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(getuid(), pw->pw_uid);
}
