#!/usr/bin/env bash
# The SDK as an integrator meets it: install the build into a throwaway prefix, copy the installed template
# out of every tree, and build it twice, once with nothing but cc and pkg-config and once as a CMake project
# with find_package(Parley).  The installed gateway then loads each build, checks the template's example
# config, prints the plugin's config keys, and stores a message posted to its webhook.
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d /tmp/parley-sdk-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() {
	echo "FAIL: $*"
	exit 1
}

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/parley/parley.h include/parley/store.h include/parley/provider.h include/parley/fetch_policy.h \
	lib/libparley-plugin.so.1 lib/pkgconfig/parley-plugin.pc lib/cmake/Parley/ParleyConfig.cmake \
	lib/cmake/Parley/ParleyConfigVersion.cmake share/parley/template/echo_channel.c \
	share/parley/template/CMakeLists.txt share/parley/template/echo.yaml share/man/man1/parley.1; do
	test -e "$prefix/$f" || fail "$f is not installed"
done
# The library exports its documented functions and nothing of its internals.
nm -D --defined-only "$prefix/lib/libparley-plugin.so.1" | grep -q ' prov_batch_finish@@PARLEY_PLUGIN_1.0$' ||
	fail "libparley-plugin.so.1 does not export prov_batch_finish under PARLEY_PLUGIN_1.0"
! nm -D --defined-only "$prefix/lib/libparley-plugin.so.1" | grep -q prov_fetch_prepare ||
	fail "libparley-plugin.so.1 exports an internal function"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
tpl=$work/echo
cp -r "$prefix/share/parley/template" "$tpl"

# 1. Nothing but cc and pkg-config.  The libraries come after the source (toolchains that link --as-needed,
# Debian's and Ubuntu's, drop a library named before anything needs it); -z defs proves that the plugin needs
# nothing but its libraries (no symbol of the executable); the rpath only because this prefix is not in the
# dynamic linker's search path.
mkdir "$work/pc"
# shellcheck disable=SC2046 # word splitting of pkg-config's flags is the point
(cd "$tpl" && cc $(pkg-config --cflags parley-plugin) -Wall -Wextra -Werror -shared -fPIC echo_channel.c \
	$(pkg-config --libs parley-plugin) -Wl,-z,defs -Wl,-rpath,"$(pkg-config --variable=libdir parley-plugin)" \
	-o "$work/pc/echo.so") || fail "the template does not build with cc and pkg-config --cflags --libs parley-plugin"
readelf -d "$work/pc/echo.so" | grep -q 'NEEDED.*libparley-plugin.so.1' || fail "echo.so does not link libparley-plugin"
nm -D --defined-only "$work/pc/echo.so" | grep -v ' _' | grep -qv ' parley_plugin_entry$' &&
	fail "echo.so exports more than its entry symbol: $(nm -D --defined-only "$work/pc/echo.so")"

# 2. A CMake project: find_package(Parley), parley_add_plugin(), install into the prefix's plugin directory.
cmake -S "$tpl" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cm.log" 2>&1 ||
	{ cat "$work/cm.log"; fail "find_package(Parley) does not configure the template"; }
cmake --build "$work/cm" >>"$work/cm.log" 2>&1 || { cat "$work/cm.log"; fail "the CMake build of the template fails"; }
test -f "$work/cm/echo.so" || fail "the CMake build made no echo.so"

# 3. The installed gateway with the template's example config (plugins.path: [.] beside it).
cp "$work/pc/echo.so" "$tpl/"
"$prefix/bin/parley" check -c "$tpl/echo.yaml" || fail "the template's echo.yaml does not check"
keys=$("$prefix/bin/parley" plugins echo -c "$tpl/echo.yaml") || fail "parley plugins echo: $keys"
grep -qE '^ *prefix +string +""' <<<"$keys" || fail "parley plugins echo does not describe the key prefix: $keys"

# 4. The template's fixtures through the installed harness (`parley test`), for each build.
for so in "$work/pc/echo.so" "$work/cm/echo.so"; do
	out=$("$prefix/bin/parley" test "$so" "$tpl"/tests/*.json 2>&1) || fail "parley test of $so fails: $out"
	grep -q "fixtures, 0 failed\|fixture(s), 0 failed\|^ok " <<<"$out" || fail "parley test of $so ran nothing: $out"
done

# 5. A webhook round trip through each build, with the installed binary and its installed built-in plugins.
for dir in "$work/pc" "$work/cm"; do
	PARLEY_BIN=$prefix/bin/parley PARLEY_TEMPLATE_PLUGINS=$dir PARLEY_SOURCE_DIR=$src \
		python3 "$src/tests/e2e/test_template_plugin.py" || fail "the template built in $dir does not take messages"
done
echo "the installed SDK builds the template (pkg-config and find_package) and the installed gateway runs it"
