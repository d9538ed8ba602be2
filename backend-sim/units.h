/* units: strict parsing of the scenario file's quantities (sizes, times, bandwidths, counts, ratios, ranges).
 *
 * Contract
 * --------
 * Every function parses the WHOLE string (surrounding blanks allowed) and returns 0 on success, -1 on any error
 * (empty, trailing garbage, negative, overflow, unknown unit); it then leaves *out untouched. No allocation.
 *   sizes:      "16384", "16KiB", "1.5MiB", "2GB"   -> bytes (B, kB/MB/GB/TB = 1000^n, KiB/MiB/GiB/TiB = 1024^n)
 *   times:      "30", "30s", "8ms", "250us", "2min", "1h", "10ns" -> ns (a bare number is seconds)
 *   bandwidths: "100MB/s", "1Gbit/s", "12.5MiB/s", "800kbit/s", "1e6" -> bytes per second (bare number = B/s)
 *   ranges:     "A" or "A..B" of one of the above (A <= B); a value is drawn uniformly in [A, B] per peer.
 */
#ifndef HEKATE_SIM_UNITS_H
#define HEKATE_SIM_UNITS_H

#include <stdbool.h>
#include <stdint.h>

int units_u64(const char *s, uint64_t *out);           /* plain non-negative integer */
int units_double(const char *s, double *out);          /* finite, >= 0 */
int units_size(const char *s, uint64_t *out);
int units_time(const char *s, uint64_t *out_ns);
int units_bandwidth(const char *s, double *out_bps);
int units_bool(const char *s, bool *out);              /* yes/no, true/false, on/off, 1/0 */

typedef struct units_range {
    double lo, hi;
} units_range;
/* kind: 's' size, 't' time (result in seconds), 'b' bandwidth (B/s). */
int units_range_parse(const char *s, char kind, units_range *out);

#endif
