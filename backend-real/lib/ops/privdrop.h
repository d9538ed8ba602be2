/* privdrop: --user / --group, giving up root once the privileged sockets are bound.
 *
 * Contract
 * --------
 * hk_privdrop_resolve turns the names given (either may be NULL; a number is accepted as an id) into ids: the user's
 * uid and, unless a group is named, its primary group; a group alone keeps the uid. hk_privdrop_apply then calls
 * setgroups (the user's supplementary groups, via initgroups, or none for a group alone), setgid and setuid, in that
 * order, and checks the result: the real, effective and saved ids are the ones asked for, and when a non-root user
 * was asked for, setuid(0) must fail (the drop cannot be undone). Any failure is an error naming the user or group:
 * the daemon must then refuse to run (it never goes on as root after a failed drop). A process that is not root and
 * already runs as the user and group asked for has nothing to change: success, its groups untouched.
 * Return codes: 0 success, -1 with err set ("--user: no such user 'x'", "cannot drop privileges to user 'x' ...").
 */
#ifndef HEKATE_PRIVDROP_H
#define HEKATE_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct hk_privdrop {
    const char *user;   /* the names as given (NULL: not given) */
    const char *group;
    bool set_uid, set_gid;
    uid_t uid;
    gid_t gid;
    char user_name[64]; /* the user's name from the password database (for initgroups), "" if none */
} hk_privdrop;

int hk_privdrop_resolve(hk_privdrop *p, const char *user, const char *group, char *err, size_t errlen);
int hk_privdrop_apply(const hk_privdrop *p, char *err, size_t errlen);

#endif
