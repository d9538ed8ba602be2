/* meta: owns a magnet user's ut_metadata fetch (see meta.h): the seeder's extension handshake read for its
 * ut_metadata id and metadata_size, the pieces collected, the result hashed against the info-hash and parsed. */
#include "meta.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bencode.h"
#include "metainfo.h"

const char *lk_meta_our_handshake(size_t *len)
{
    static const char hs[] = "d1:md11:ut_metadatai3eee";
    _Static_assert(LK_META_OUR_ID == 3, "the handshake above names id 3");
    *len = sizeof hs - 1;
    return hs;
}

void lk_meta_init(lk_meta *m, const uint8_t info_hash[20])
{
    memset(m, 0, sizeof *m);
    memcpy(m->info_hash, info_hash, 20);
    m->wanted = true;
}

void lk_meta_free(lk_meta *m)
{
    free(m->buf);
    free(m->have);
    m->buf = m->have = NULL;
}

size_t lk_meta_request(uint32_t i, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "d8:msg_typei0e5:piecei%uee", i);
    return n < 0 ? 0 : (size_t)n;
}

static lk_meta_status say(const char **why, const char *text, lk_meta_status st)
{
    *why = text;
    return st;
}

lk_meta_status lk_meta_on_ext_handshake(lk_meta *m, const uint8_t *p, uint32_t len, const char **why)
{
    ben_doc d;
    ben_error e;
    if (ben_decode(p, len, 1024, &d, &e) < 0)
        return say(why, "bad extension handshake", LK_META_BAD);
    int64_t dm = ben_dict_find(&d, 0, "m"), ut = dm >= 0 ? ben_dict_find(&d, (uint32_t)dm, "ut_metadata") : -1;
    int64_t id = 0, size = 0;
    bool have_id = ut >= 0 && ben_get_int(&d, ut, &id) && id > 0 && id < 256;
    bool have_size = ben_get_int(&d, ben_dict_find(&d, 0, "metadata_size"), &size) && size > 0 && size < LK_META_MAX;
    ben_doc_free(&d);
    if (!m->wanted)
        return LK_META_OK;
    if (!have_id || !have_size)
        return say(why, "seeder offers no ut_metadata", LK_META_FAILED);
    m->seeder_id = (uint8_t)id;
    if (m->buf == NULL || m->size != (uint32_t)size) {
        lk_meta_free(m);
        m->size = (uint32_t)size;
        m->buf = malloc(m->size);
        m->have = calloc(lk_meta_pieces(m), 1);
        if (m->buf == NULL || m->have == NULL)
            abort();
        m->got = 0;
    }
    return LK_META_REQUEST;
}

/* Every piece is in: the hash, then the dictionary's own parse (as a .torrent around it). */
static lk_meta_status finish(lk_meta *m, const char **why)
{
    uint8_t ih[20];
    SHA1(m->buf, m->size, ih);
    if (memcmp(ih, m->info_hash, 20) != 0)
        return say(why, "metadata does not hash to the info-hash", LK_META_FAILED);
    size_t tlen = (size_t)m->size + 8;
    uint8_t *t = malloc(tlen);
    if (t == NULL)
        abort();
    memcpy(t, "d4:info", 7);
    memcpy(t + 7, m->buf, m->size);
    t[tlen - 1] = 'e';
    mi_torrent *mt = NULL;
    mi_error me;
    int rc = mi_parse(t, tlen, &mt, &me);
    free(t);
    if (rc < 0)
        return say(why, "metadata does not parse", LK_META_FAILED);
    m->total_length = mt->total_length;
    m->piece_length = mt->piece_length;
    mi_free(mt);
    m->wanted = false;
    return LK_META_DONE;
}

lk_meta_status lk_meta_on_message(lk_meta *m, const uint8_t *p, uint32_t len, const char **why)
{
    ben_doc d;
    ben_error e;
    size_t used = 0;
    if (ben_decode_prefix(p, len, 64, &d, &used, &e) < 0)
        return say(why, "bad ut_metadata message", LK_META_BAD);
    int64_t type = -1, piece = -1, total = -1;
    ben_get_int(&d, ben_dict_find(&d, 0, "msg_type"), &type);
    ben_get_int(&d, ben_dict_find(&d, 0, "piece"), &piece);
    ben_get_int(&d, ben_dict_find(&d, 0, "total_size"), &total);
    ben_doc_free(&d);
    if (!m->wanted || m->buf == NULL)
        return LK_META_OK;
    uint32_t pieces = lk_meta_pieces(m);
    if (type == 2)
        return say(why, "metadata request rejected", LK_META_FAILED);
    if (type != 1 || piece < 0 || piece >= pieces || total != m->size)
        return say(why, "unexpected ut_metadata message", LK_META_BAD);
    uint32_t off = (uint32_t)piece * LK_META_PIECE;
    uint32_t want = m->size - off < LK_META_PIECE ? m->size - off : LK_META_PIECE;
    if (len - used != want)
        return say(why, "metadata piece of the wrong size", LK_META_BAD);
    if (!m->have[piece]) {
        memcpy(m->buf + off, p + used, want);
        m->have[piece] = 1;
        m->got++;
    }
    return m->got == pieces ? finish(m, why) : LK_META_OK;
}
