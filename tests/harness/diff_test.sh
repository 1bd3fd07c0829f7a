#!/bin/sh
# diff_test.sh PARLEY CHANNEL_WEBHOOK.so FIXTURE_DIR: `parley test` fails on a fixture that expects a
# field the plugin does not produce, naming the fixture file and the field's path; --update then writes
# what the plugin produced, and the fixture passes again.
set -u
parley=$1 so=$2 src=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

sed '/"expect"/,$ s/"text": "Hello"/"text": "Hallo"/' "$src/text.json" >"$dir/text.json"
sed 's/"result": "retry"/"result": "sent"/' "$src/send_retry.json" >"$dir/send_retry.json"
cmp -s "$src/text.json" "$dir/text.json" && fail "the text fixture was not changed (its expected text moved?)"
cmp -s "$src/send_retry.json" "$dir/send_retry.json" && fail "the send fixture was not changed"

out=$("$parley" test "$so" "$dir" 2>/dev/null)
rc=$?
echo "$out"
[ "$rc" = 1 ] || fail "exit $rc, expected 1 for failing fixtures"
echo "$out" | grep -qF "$dir/text.json: expect.envelopes[0].text: expected \"Hallo\", got \"Hello\"" ||
	fail "no diff line naming text.json and expect.envelopes[0].text"
echo "$out" | grep -qF "$dir/send_retry.json: expect.outcome.result: expected \"sent\", got \"retry\"" ||
	fail "no diff line naming send_retry.json and expect.outcome.result"
echo "$out" | grep -q "2 fixtures, 2 failed" || fail "the summary does not count 2 failures"

"$parley" test --update "$so" "$dir" >/dev/null 2>&1 || fail "--update failed"
grep -q 'Hallo' "$dir/text.json" && fail "--update did not write the produced text"
"$parley" test "$so" "$dir" >/dev/null 2>&1 || fail "the updated fixtures do not pass"
echo "ok: diffs name the fixture and the field; --update writes what the plugin did"
