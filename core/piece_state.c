/* piece_state: owns a torrent's piece verification states (contract in piece_state.h): the lazily allocated good
 * bitmap and the sorted list of bad pieces. */
#include "piece_state.h"

#include <string.h>

static size_t block_bytes(uint32_t count)
{
    return sizeof(hk_pieces) + ((size_t)count + 7) / 8;
}

static bool bit(const uint8_t *bits, uint32_t i)
{
    return (bits[i / 8] >> (7 - i % 8)) & 1u;
}

static int64_t find_bad(const hk_pieces *ps, uint32_t i)
{
    uint32_t lo = 0, hi = ps->nbad;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ps->bad[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ps->nbad && ps->bad[lo] == i ? (int64_t)lo : -((int64_t)lo + 1);
}

hk_piece_kind hk_pieces_get(const hk_pieces *ps, bool all_good, uint32_t i)
{
    if (all_good)
        return HK_PIECE_GOOD;
    if (!ps || i >= ps->count)
        return HK_PIECE_UNKNOWN;
    if (bit(ps->good, i))
        return HK_PIECE_GOOD;
    return find_bad(ps, i) >= 0 ? HK_PIECE_BAD : HK_PIECE_UNKNOWN;
}

static int add_bad(hk_mem *mem, hk_pieces *ps, uint32_t i)
{
    int64_t at = find_bad(ps, i);
    if (at >= 0)
        return 0;
    uint32_t pos = (uint32_t)(-at - 1);
    if (ps->nbad == ps->bad_cap) {
        uint32_t ncap = ps->bad_cap ? ps->bad_cap * 2 : 4;
        uint32_t *n = hk_mem_realloc(mem, ps->bad, (size_t)ps->bad_cap * sizeof *n, (size_t)ncap * sizeof *n);
        if (!n)
            return -1;
        ps->bad = n;
        ps->bad_cap = ncap;
    }
    memmove(ps->bad + pos + 1, ps->bad + pos, (size_t)(ps->nbad - pos) * sizeof *ps->bad);
    ps->bad[pos] = i;
    ps->nbad++;
    return 0;
}

static void drop_bad(hk_pieces *ps, uint32_t i)
{
    int64_t at = find_bad(ps, i);
    if (at < 0)
        return;
    memmove(ps->bad + at, ps->bad + at + 1, (size_t)(ps->nbad - (uint32_t)at - 1) * sizeof *ps->bad);
    ps->nbad--;
}

int hk_pieces_set(hk_mem *mem, hk_pieces **psp, bool *all_good, uint32_t count, uint32_t i, bool good)
{
    if (i >= count)
        return 0;
    if (*all_good && good)
        return 0;
    hk_pieces *ps = *psp;
    if (!ps) {
        ps = hk_mem_calloc(mem, 1, block_bytes(count));
        if (!ps)
            return -1;
        ps->count = count;
        if (*all_good)
            memset(ps->good, 0xFF, ((size_t)count + 7) / 8), ps->ngood = count; /* a good torrent turning bad */
    }
    uint8_t mask = (uint8_t)(1u << (7 - i % 8));
    if (good) {
        drop_bad(ps, i);
        if (!(ps->good[i / 8] & mask)) {
            ps->good[i / 8] |= mask;
            ps->ngood++;
        }
    } else {
        if (add_bad(mem, ps, i) != 0) {
            if (!*psp)
                hk_mem_free(mem, ps, block_bytes(count));
            return -1;
        }
        if (ps->good[i / 8] & mask) {
            ps->good[i / 8] &= (uint8_t)~mask;
            ps->ngood--;
        }
    }
    *psp = ps;
    *all_good = false;
    if (ps->ngood == count && ps->nbad == 0) {
        hk_pieces_free(mem, psp);
        *all_good = true;
    }
    return 0;
}

void hk_pieces_free(hk_mem *mem, hk_pieces **psp)
{
    hk_pieces *ps = *psp;
    if (!ps)
        return;
    hk_mem_free(mem, ps->bad, (size_t)ps->bad_cap * sizeof *ps->bad);
    hk_mem_free(mem, ps, block_bytes(ps->count));
    *psp = NULL;
}

size_t hk_pieces_bytes(const hk_pieces *ps)
{
    return ps ? block_bytes(ps->count) + (size_t)ps->bad_cap * sizeof *ps->bad : 0;
}

void hk_pieces_bitfield(const hk_pieces *ps, uint32_t count, uint8_t *out)
{
    size_t n = ((size_t)count + 7) / 8;
    memset(out, 0xFF, n);
    if (count % 8)
        out[n - 1] = (uint8_t)(0xFF << (8 - count % 8));
    for (uint32_t k = 0; ps && k < ps->nbad; k++)
        if (ps->bad[k] < count)
            out[ps->bad[k] / 8] &= (uint8_t)~(1u << (7 - ps->bad[k] % 8));
}
