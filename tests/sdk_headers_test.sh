#!/usr/bin/env bash
# The SDK's headers as an integrator reads them, and the library as a plugin links it:
#  - no comment in sdk/include/parley/*.h starts after code and runs on (clang-format once broke the store
#    ops' comments that way), and none has a tab inside its text;
#  - libparley-plugin.so.1 exports exactly the functions parley/provider.h, fetch_policy.h and provider_channel.h declare,
#    each under a PARLEY_PLUGIN_1.* symbol version.
set -euo pipefail
src=$1
lib=$2
python3 - "$src" "$lib" <<'PY'
import re, subprocess, sys, glob, os
src, lib = sys.argv[1], sys.argv[2]
bad = []
for h in sorted(glob.glob(os.path.join(src, "sdk/include/parley/*.h"))):
    for no, line in enumerate(open(h), 1):
        if re.search(r"[;,)]\s*/\*(?!.*\*/)", line):
            bad.append(f"{h}:{no}: a comment opens after code and runs on: {line.strip()}")
        if re.match(r"\s*\*.*\S\t", line):
            bad.append(f"{h}:{no}: a tab inside a comment's text: {line.strip()}")
declared = set()
for h in ("provider.h", "fetch_policy.h", "provider_channel.h"):
    text = open(os.path.join(src, "sdk/include/parley", h)).read()
    declared |= set(re.findall(r"^[a-z][^;{#]*?\b(prov_[a-z0-9_]+)\s*\(", text, re.M))
out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
exported = {}
for line in out.splitlines():
    m = re.match(r"\S+ T (\w+)@@?(\S+)$", line)
    if m:
        exported[m.group(1)] = m.group(2)
for f in sorted(declared - set(exported)):
    bad.append(f"{f} is declared in the SDK headers but libparley-plugin does not export it (sdk/lib/parley-plugin.map)")
for f in sorted(set(exported) - declared):
    bad.append(f"libparley-plugin exports {f}, which no SDK header declares")
for f, v in sorted(exported.items()):
    if not v.startswith("PARLEY_PLUGIN_1."):
        bad.append(f"{f} is exported under version {v}, not PARLEY_PLUGIN_1.*")
for b in bad:
    print("FAIL:", b)
if bad:
    sys.exit(1)
print(f"sdk headers read whole; libparley-plugin exports the {len(declared)} declared functions, versioned")
PY
