/* config_file: hekate's configuration file (-c FILE), read with libinih.
 *
 * Contract
 * --------
 * The file is INI text: `key = value` lines, comments starting a line with ';' or '#' (or after a value, as
 * " ; comment"), keys at the top or in one [hekate] section (any other section is an error). Every long option of
 * the command line is a key under its long name (options.c's table: a new option is a key at once; '_' is accepted
 * for '-', in any case), its value read by the option's own parser: a number, size or seconds as on the command
 * line, a text as is (no quotes: the value is what stands after '=' with the spaces around it removed), a flag
 * (no-trackers, list, ipv4-only, ipv6-only) true/false/yes/no/on/off/1/0, verbose and quiet a count (verbose = 2
 * is -vv). `dir = DIR` names a folder to serve and may repeat, as may `dht-bootstrap`; any other key given twice
 * is an error, and so are an unknown key, a key without a value, a value its parser refuses, a line that is
 * neither `key = value` nor [section], a line longer than HK_CONF_MAX_LINE or holding a NUL byte, and `help`, `version`, `config` (command
 * line only). Every error names the file and line: "hekate.conf:12: unknown key 'max-peer'". libinih's own
 * syntax also holds: `key: value` is accepted as `key = value`, and a section header followed by no key is not
 * seen (so an empty unknown section is not an error).
 *
 * hk_conf_read reads a regular file of at most HK_CONF_MAX_BYTES into *text (malloc'd, NUL-terminated; *len
 * without the NUL): 0, or -1 with err naming the path and the reason (a FIFO or device is refused, never read).
 * hk_conf_apply applies text (len bytes, name used in messages) to o, on top of what o holds, marking the option
 * rows it set in given[] (hk_options_nrows() of them): 0, or -1 at the first error, err "NAME:LINE: ...". The
 * `dir` values are appended to o->dirs (o->dirs_owned, freed by hk_options_free, as the copies text options point
 * to). libinih's process-wide settings (Debian's build) are set for this file's syntax on each call: no multi-line
 * values, stop at the first error, lines up to HK_CONF_MAX_LINE.
 */
#ifndef HEKATE_CONFIG_FILE_H
#define HEKATE_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

#define HK_CONF_MAX_BYTES (1u << 20)  /* 1 MiB: a config file larger than that is a mistake */
#define HK_CONF_MAX_LINE 8192         /* characters in a line (a path is at most 4096) */

int hk_conf_read(const char *path, char **text, size_t *len, char *err, size_t errlen);
int hk_conf_apply(hk_options *o, const char *name, const char *text, size_t len, bool *given, char *err,
                  size_t errlen);

#endif
