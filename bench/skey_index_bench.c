/* skey_index_bench: MSE/PE's SKEY index at 10^6 torrents: insert time, lookup time (random order, every record
 * found), and bytes per torrent. Not built by CMake (a one-off measurement recorded in docs/benchmarks.md):
 *   cmake --build build/release --target hekate_core
 *   cc -O2 -Icore bench/skey_index_bench.c build/release/core/libhekate_core.a -lcrypto -o /tmp/skey_index_bench
 *   /tmp/skey_index_bench */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "skey_index.h"
#include "mse_crypto.h"
#define N 1000000u
static uint8_t (*ihs)[20];
static uint32_t *mixes; /* the owner's stored hk_skey_mix of each record (the torrent table keeps it in the record) */
static const uint8_t *ih_of(const void *o, uint32_t r){ (void)o; return ihs[r]; }
static uint32_t mix_of(const void *o, uint32_t r){ (void)o; return mixes[r]; }
static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec/1e9; }
int main(void){
  ihs = malloc((size_t)N*20); for (size_t i=0;i<(size_t)N*20;i++) ihs[0][i]=(uint8_t)(rand() >> 3);
  hk_mem mem={0}; hk_skey_index sk; hk_skey_init(&sk,&mem,ih_of,mix_of,NULL);
  mixes = malloc((size_t)N*sizeof *mixes);
  double t0=now(); for (uint32_t i=0;i<N;i++) { mixes[i]=hk_skey_mix(ihs[i]); if (hk_skey_insert(&sk,i)) return 1; }
  double t1=now(); uint8_t (*q)[20]=malloc((size_t)N*20); for (uint32_t i=0;i<N;i++) hk_mse_hash("req2",ihs[i],20,NULL,0,q[i]);
  double t2=now(); uint32_t ok=0; for (uint32_t i=0;i<N;i++) ok += hk_skey_find(&sk,q[(i*7919u)%N])==(i*7919u)%N;
  double t3=now();
  printf("insert %.2f s for %u; lookups %.0f ns each (%u ok); index %zu bytes = %.2f B/torrent\n", t1-t0, N, (t3-t2)/N*1e9, ok, hk_skey_bytes(&sk), (double)hk_skey_bytes(&sk)/N);
}
