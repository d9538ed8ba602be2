/* seeder_resume: a torrent's piece verification marks read out for a resume state and restored from one
 * (seeder.h: hk_seeder_torrent_marks, hk_seeder_restore_marks), through core/piece_state.h only. */
#include "piece_state.h"
#include "seeder_internal.h"

bool hk_seeder_torrent_marks(hk_seeder *s, const uint8_t info_hash[20], bool *all_good,
                             const struct hk_pieces **pieces, bool *verifying)
{
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    hk_torrent *t = rec == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, rec);
    if (!t)
        return false;
    *all_good = t->all_good;
    *pieces = hk_torrent_pieces(t);
    *verifying = s->rt.disk_verify != NULL && t->pieces_rel != 0;
    return true;
}

int64_t hk_seeder_restore_marks(hk_seeder *s, const uint8_t info_hash[20], const uint8_t *good, uint32_t piece_count)
{
    uint32_t rec = hk_tt_find(&s->torrents, info_hash);
    hk_torrent *t = rec == HK_TT_NONE ? NULL : hk_tt_get(&s->torrents, rec);
    if (!t || hk_torrent_piece_count(t) != piece_count)
        return -1;
    if (!s->rt.disk_verify || t->all_good)
        return 0; /* nothing to check, or every piece good already */
    int64_t n = 0;
    for (uint32_t i = 0; i < piece_count; i++) {
        if (good && !(good[i / 8] & (0x80u >> (i % 8))))
            continue;
        if (hk_pieces_get(hk_torrent_pieces(t), t->all_good, i) == HK_PIECE_GOOD)
            continue;
        if (hk_tt_pieces_set(&s->torrents, t, i, true) != 0)
            return -1;
        n++;
    }
    return n;
}
