/* tree_fixture: a temporary folder tree for the store's confinement tests (test_store_datadir, test_store_links):
 * its root, paths below it, folders, filled files and .torrent files written there.
 *
 * Contract: every function asserts (Criterion) on failure, so it returns only with what it promises.
 * tf_tree_make(tag) creates /tmp/hekate-<tag>-XXXXXX as the root (a suite's .init); tf_tree_remove() removes it and
 * everything below (its .fini). tf_path(fmt, ...) returns "<root>/<fmt...>" in one of 8 rotating static buffers (so a
 * call may take up to 8 of them at once). tf_mkdir makes one folder (0755); tf_write_fill writes len bytes, each
 * `fill`, to path (created or truncated). tf_write_torrent writes <root>/<tpath>, a torrent named `name` of pieces
 * of 16 KiB: one file of len bytes, or (multi) files "b" (len bytes) and "c" (3,000 bytes) below `name`; it returns
 * the parsed metainfo (the caller frees it with mi_free). */
#ifndef HEKATE_TEST_TREE_FIXTURE_H
#define HEKATE_TEST_TREE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metainfo.h"

void tf_tree_make(const char *tag);
void tf_tree_remove(void);
char *tf_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tf_mkdir(const char *path);
void tf_write_fill(const char *path, size_t len, uint8_t fill);
mi_torrent *tf_write_torrent(const char *tpath, const char *name, bool multi, uint64_t len);

#endif
