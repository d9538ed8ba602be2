/* token_bucket: a byte-rate limiter (upload rate caps, docs/design.md §14), pure: time is given by the caller
 * (the seeder passes rt->now()), nothing is read from a clock.
 *
 * Contract
 * --------
 * A bucket holds whole tokens (bytes) up to `burst`; it gains `rate` tokens per second of time given to
 * hk_tb_refill, kept exactly in integer arithmetic (the fraction of a token earned so far is carried in
 * byte-nanoseconds, so refilling often or seldom gives the same tokens for the same span: deterministic). A new
 * bucket is full. Tokens are taken whole (hk_tb_take: all of n or nothing, never a debt), so a message of n bytes
 * needs n <= burst; hk_tb_time_for says when n tokens will exist. Time going backwards adds nothing.
 * Limits: 1 <= rate <= HK_TB_RATE_MAX and 1 <= burst <= HK_TB_BURST_MAX (no intermediate product overflows 64 bits);
 * hk_tb_init and hk_tb_set clamp to them.
 */
#ifndef HEKATE_TOKEN_BUCKET_H
#define HEKATE_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

#define HK_TB_RATE_MAX (1ull << 34)  /* 16 GiB/s */
#define HK_TB_BURST_MAX (1ull << 34) /* 16 GiB */

typedef struct hk_token_bucket {
    uint64_t rate;           /* tokens (bytes) per second */
    uint64_t burst;          /* most tokens held */
    uint64_t tokens;         /* whole tokens as of `at` */
    uint64_t frac;           /* byte-nanoseconds earned beyond `tokens` (< HK_NS_PER_SEC; 0 when full) */
    hk_time at;              /* time of the last refill */
} hk_token_bucket;

/* A full bucket at time now. */
void hk_tb_init(hk_token_bucket *b, uint64_t rate, uint64_t burst, hk_time now);
/* New rate and burst from now on (refilled at the old rate up to now first; tokens above the new burst are lost). */
void hk_tb_set(hk_token_bucket *b, uint64_t rate, uint64_t burst, hk_time now);
/* Adds the tokens earned between the last refill and now (no-op when now <= the last refill). */
void hk_tb_refill(hk_token_bucket *b, hk_time now);
/* Takes n tokens if the bucket holds them (refill first): true; else false and nothing is taken. */
bool hk_tb_take(hk_token_bucket *b, uint64_t n);
/* True when n tokens are held now (after the last refill). */
static inline bool hk_tb_has(const hk_token_bucket *b, uint64_t n)
{
    return b->tokens >= n;
}
/* The earliest time at which the bucket, refilled then, holds n tokens (n above burst counts as burst): `at`
 * (the last refill) when it already does. Never HK_TIME_NEVER. */
hk_time hk_tb_time_for(const hk_token_bucket *b, uint64_t n);

#endif
