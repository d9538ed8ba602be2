/* privdrop: name resolution and the setgroups/setgid/setuid sequence of --user/--group, checked (see privdrop.h). */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A decimal id (digits only, fits in 32 bits): true and *out. */
static bool numeric_id(const char *s, unsigned long *out)
{
    if (!*s)
        return false;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    errno = 0;
    unsigned long v = strtoul(s, NULL, 10);
    if (errno || v >= 0xffffffffUL)
        return false;
    *out = v;
    return true;
}

static int resolve_user(hk_privdrop *p, const char *user, char *err, size_t errlen)
{
    if (!*user) {
        snprintf(err, errlen, "--user: empty user name");
        return -1;
    }
    errno = 0;
    struct passwd *pw = getpwnam(user);
    unsigned long id;
    if (!pw && numeric_id(user, &id)) {
        errno = 0;
        pw = getpwuid((uid_t)id);
        if (!pw) { /* a bare uid without an entry: no primary group to take, --group must say it */
            p->set_uid = true;
            p->uid = (uid_t)id;
            return 0;
        }
    }
    if (!pw) {
        if (errno)
            snprintf(err, errlen, "--user: cannot look up user '%s': %s", user, strerror(errno));
        else
            snprintf(err, errlen, "--user: no such user '%s'", user);
        return -1;
    }
    p->set_uid = true;
    p->uid = pw->pw_uid;
    p->set_gid = true;
    p->gid = pw->pw_gid;
    snprintf(p->user_name, sizeof p->user_name, "%s", pw->pw_name);
    return 0;
}

static int resolve_group(hk_privdrop *p, const char *group, char *err, size_t errlen)
{
    if (!*group) {
        snprintf(err, errlen, "--group: empty group name");
        return -1;
    }
    errno = 0;
    struct group *gr = getgrnam(group);
    unsigned long id;
    if (gr) {
        p->gid = gr->gr_gid;
    } else if (numeric_id(group, &id)) {
        p->gid = (gid_t)id;
    } else {
        if (errno)
            snprintf(err, errlen, "--group: cannot look up group '%s': %s", group, strerror(errno));
        else
            snprintf(err, errlen, "--group: no such group '%s'", group);
        return -1;
    }
    p->set_gid = true;
    return 0;
}

int hk_privdrop_resolve(hk_privdrop *p, const char *user, const char *group, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->user = user;
    p->group = group;
    if (user && resolve_user(p, user, err, errlen) != 0)
        return -1;
    if (group && resolve_group(p, group, err, errlen) != 0)
        return -1;
    if (p->set_uid && !p->set_gid) {
        snprintf(err, errlen, "--user: uid %s has no entry in the user database: give --group too", user);
        return -1;
    }
    return 0;
}

/* "user 'x'", "group 'y'" or "user 'x' and group 'y'": what the errors name. */
static void describe(const hk_privdrop *p, char *buf, size_t len)
{
    if (p->user && p->group)
        snprintf(buf, len, "user '%s' and group '%s'", p->user, p->group);
    else if (p->user)
        snprintf(buf, len, "user '%s'", p->user);
    else
        snprintf(buf, len, "group '%s'", p->group ? p->group : "?");
}

static int fail(const hk_privdrop *p, const char *step, int e, char *err, size_t errlen)
{
    char who[160];
    describe(p, who, sizeof who);
    snprintf(err, errlen, "cannot drop privileges to %s: %s: %s", who, step, strerror(e));
    return -1;
}

/* The ids now in force are the ones asked for, and a dropped root cannot come back: 0, or -1 with err set. */
static int verify(const hk_privdrop *p, char *err, size_t errlen)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return fail(p, "getresuid", errno, err, errlen);
    if (p->set_uid && (ru != p->uid || eu != p->uid || su != p->uid))
        return fail(p, "user ids not all changed", EPERM, err, errlen);
    if (p->set_gid && (rg != p->gid || eg != p->gid || sg != p->gid))
        return fail(p, "group ids not all changed", EPERM, err, errlen);
    if (p->set_uid && p->uid != 0 && setuid(0) == 0)
        return fail(p, "root could be regained after the drop", EPERM, err, errlen);
    return 0;
}

/* Not root, and already the user and group asked for: there is nothing to give up (and no right to touch the groups). */
static bool already(const hk_privdrop *p)
{
    if (geteuid() == 0)
        return false;
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
        return false;
    bool uid_ok = !p->set_uid || (ru == p->uid && eu == p->uid && su == p->uid);
    bool gid_ok = !p->set_gid || (rg == p->gid && eg == p->gid && sg == p->gid);
    return uid_ok && gid_ok;
}

int hk_privdrop_apply(const hk_privdrop *p, char *err, size_t errlen)
{
    if (!p->set_uid && !p->set_gid)
        return 0;
    if (already(p))
        return 0;
    if (p->set_gid) {
        int r = p->set_uid && p->user_name[0] ? initgroups(p->user_name, p->gid) : setgroups(0, NULL);
        if (r != 0)
            return fail(p, "setgroups", errno, err, errlen);
        if (setgid(p->gid) != 0)
            return fail(p, "setgid", errno, err, errlen);
    }
    if (p->set_uid && setuid(p->uid) != 0)
        return fail(p, "setuid", errno, err, errlen);
    return verify(p, err, errlen);
}
