#!/usr/bin/env bash
# The purity rule, mechanically: every symbol the core library needs from outside itself must be on the allow-list
# (memory, strings, libcrypto hashing). A socket, file, clock, signal, thread or rand call in core/ fails this test.
# Usage: check_core_symbols.sh LIBHEKATE_CORE.a ALLOWED_SYMBOLS.txt
set -euo pipefail
lib=$1 allow=$2
defined=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF>=3 {print $3}' | sort -u)
undefined=$(nm -g -u "$lib" 2>/dev/null | awk '{print $NF}' | grep -v ':$' | sort -u)
allowed=$(grep -Ev '^\s*(#|$)' "$allow" | sort -u)
# Sanitizer and compiler runtime hooks are not calls the code makes.
external=$(comm -23 <(echo "$undefined") <(echo "$defined") | grep -v '^$' || true)
bad=$(echo "$external" | comm -23 - <(echo "$allowed") |
      grep -Ev '^(__asan_|__ubsan_|__sanitizer_|__sancov_|__stack_chk_fail$|__msan_|__tsan_)' | grep -v '^$' || true)
count=$(echo "$external" | grep -c . || true)
if [ -n "$bad" ]; then
  echo "core/ uses symbols outside the purity allow-list ($allow):"
  echo "$bad" | sed 's/^/  /'
  exit 1
fi
echo "core/ is pure: $count external symbols, all allowed"
