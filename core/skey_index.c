/* skey_index: owns the SKEY lookup of MSE/PE: an hk_ih_index whose key is HASH('req2', info-hash), recomputed on
 * demand, over mixes the owner stores in its records (see skey_index.h). */
#include "skey_index.h"

#include "hash.h"
#include "mse_crypto.h"

/* The index's key function: the record's req2 hash, in the index's scratch buffer (one key is read at a time). */
static const uint8_t *req2_of(const void *owner, uint32_t rec)
{
    hk_skey_index *sk = (hk_skey_index *)owner; /* the index is its own owner: the scratch buffer is its state */
    hk_mse_hash("req2", sk->info_hash_of(sk->owner, rec), 20, NULL, 0, sk->scratch);
    return sk->scratch;
}

static uint32_t mix_of(const void *owner, uint32_t rec)
{
    const hk_skey_index *sk = owner;
    return sk->mix_of(sk->owner, rec);
}

void hk_skey_init(hk_skey_index *sk, hk_mem *mem, hk_ih_key_fn info_hash_of, hk_ih_mix_fn mix_fn, const void *owner)
{
    sk->info_hash_of = info_hash_of;
    sk->mix_of = mix_fn;
    sk->owner = owner;
    hk_ih_init(&sk->ix, mem, 16, true, req2_of, sk);
    hk_ih_set_mix_fn(&sk->ix, mix_of);
}

void hk_skey_free(hk_skey_index *sk)
{
    hk_ih_free(&sk->ix);
}

uint32_t hk_skey_mix(const uint8_t info_hash[20])
{
    uint8_t key[20];
    hk_mse_hash("req2", info_hash, 20, NULL, 0, key);
    return hk_mix_info_hash(key);
}

int hk_skey_insert(hk_skey_index *sk, uint32_t rec)
{
    return hk_ih_insert(&sk->ix, rec);
}

void hk_skey_remove(hk_skey_index *sk, const uint8_t info_hash[20])
{
    uint8_t key[20];
    hk_mse_hash("req2", info_hash, 20, NULL, 0, key);
    (void)hk_ih_remove(&sk->ix, key);
}

uint32_t hk_skey_find(hk_skey_index *sk, const uint8_t req2[20])
{
    return hk_ih_find(&sk->ix, req2);
}

size_t hk_skey_bytes(const hk_skey_index *sk)
{
    return hk_ih_bytes(&sk->ix);
}
