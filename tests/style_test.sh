#!/usr/bin/env bash
# Style gates from STYLE.md: the committed .clang-format holds, and no banned
# string functions (strcpy, strcat, sprintf, gets, strtok) are used.
set -euo pipefail
cd "$1"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find core plugins sdk tests bench examples -name '*.[ch]')
clang-format --dry-run --Werror $files
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)\s*\(' $files; then
  echo "FAIL: banned functions above (use snprintf, strndup, strtok_r or a strbuf)"
  exit 1
fi
# Storage is pluggable: SQL lives only in store plugins (plugins/store/).
if grep -nEi '\b(sqlite3|libpq|SELECT [a-z*]|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM)' $(git ls-files 'core/*.[ch]' 'plugins/channel/*.[ch]' 'plugins/step/*.[ch]' 'plugins/router/*.[ch]' 'plugins/common/*.[ch]' 2>/dev/null); then
  echo "FAIL: SQL outside plugins/store/ (above): go through the store's ops instead"
  exit 1
fi
echo "style ok: $(wc -w <<<"$files") files formatted, no banned functions"
