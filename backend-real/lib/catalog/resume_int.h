/* resume_int: the resume object's insides, shared by resume.c (set-up, spool, load) and resume_save.c (snapshot,
 * background write, finish). Not a public header: the contract is resume.h's.
 *
 * A record's resume_ref names where its serving description is kept:
 *   REF_SPOOL | offset                       in the spool (a 4-byte length, then the description);
 *   target << REF_TSHIFT | gen bit | offset  in the file target last loaded or wrote, generation gen & 1.
 * Two generations of a target's file are open while a save's finish moves the refs from the old file to the new one
 * a slice at a time (the old file is closed when the last slice is done). Spool offsets only grow while refs into it
 * may exist: a save that covered the spool up to L punches [0, L) out (or truncates it when nothing follows L).
 */
#ifndef HEKATE_RESUME_INT_H
#define HEKATE_RESUME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metainfo.h"
#include "resume.h"
#include "resume_state.h"

#define REF_SPOOL (1ull << 63)
#define REF_GEN (1ull << 62)
#define REF_TSHIFT 40
#define REF_TMASK ((1ull << 22) - 1)
#define REF_OFF_MASK ((1ull << REF_TSHIFT) - 1)

typedef struct target {
    char *file;                  /* the state file */
    char **dirs;                 /* the DIRs it records (the object's copies) */
    size_t ndirs;
    int fd[2];                   /* by generation: the file last loaded or written (its descriptions), -1: none */
    uint64_t size[2];
    unsigned gen;                /* the current generation (0 or 1) */
    bool retired;                /* its DIRs are no longer served (hk_resume_set_dirs): never written again; kept
                                    open while refs into it may remain */
} target;

struct hk_resume {
    target *t;
    size_t nt;
    bool per_dir;                /* one target per DIR (else one for every DIR) */
    int spool;                   /* unlinked file of descriptions; -1 if it could not be made */
    uint64_t spool_len;          /* bytes written to it, the buffer included (the next description's offset) */
    uint8_t *sbuf;
    size_t sbuf_len;
    uint64_t spool_mark;         /* spool_len covered by the last complete save: nothing new while equal */
    uint64_t digest;             /* of what the last save wrote (0: nothing saved yet) */
    bool busy;                   /* a save is between its snapshot and the end of its finish */
    hk_resume_job *snap;         /* the save whose snapshot is being taken (slices to go), or NULL */
    hk_resume_stats st;
};

double hk_resume_mono(void);
long hk_resume_target_of(const hk_resume *rs, const char *path);     /* the first target whose DIRs hold path, -1 */
int hk_resume_write_all(int fd, const uint8_t *p, size_t n);          /* 0, -1 (errno) */
int hk_resume_spool_flush(hk_resume *rs);                              /* 0, -1 */
/* The identities of mi's data files beside the .torrent at tpath: their count, -1 if one cannot be examined. out
 * may be NULL (count only). */
long hk_resume_data_ids(const char *tpath, const mi_torrent *mi, hk_rs_data_id *out);

#endif
