/* enum_names: the one way the core turns an enum value into its static name (for logs and reports).
 *
 * Contract
 * --------
 * A module keeps one `static const char *const names[]` per enum, indexed by value with designated initialisers
 * ([HK_X] = "x"); HK_NAME_OF(names, v) is names[v], or "?" for a value outside the table or without a name. It never
 * fails and never returns NULL.
 */
#ifndef HEKATE_ENUM_NAMES_H
#define HEKATE_ENUM_NAMES_H

#include <stddef.h>

#define HK_NAME_OF(table, v)                                                                                       \
    ((size_t)(v) < sizeof(table) / sizeof *(table) && (table)[(size_t)(v)] ? (table)[(size_t)(v)] : "?")

#endif
