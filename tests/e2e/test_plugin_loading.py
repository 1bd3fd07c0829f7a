"""Friendlier plugin loading: a plugins.path entry that is no directory is a config error at its line and
column; `parley plugins NAME` describes a plugin's config keys; a plugin built for a newer ABI minor loads with
a notice naming what it will not get."""
import os
import re

from harness import BAD_PLUGINS, Gateway, check, done

gw = Gateway(config_body=f"plugins:\n  path: [{BAD_PLUGINS}]\n")
try:
    # Entries on lines 3 and 4: one missing, one a file; the good one on line 5 is no error.
    bad = os.path.join(gw.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write(f"""plugins:
  path:
    - plugins-not-here
    - {gw.config}
    - {BAD_PLUGINS}
channels:
  - name: hooks
    type: webhook
    config: {{ insecure: true }}
""")
    rc, out, err = gw.cli("check", "-c", bad)
    missing = os.path.join(gw.dir, "plugins-not-here")
    check(rc != 0, f"check fails on a plugins.path that does not exist (rc={rc})")
    check(f"{bad}:3:7: plugins.path: {missing} does not exist" in err, f"the missing entry at its line: {err!r}")
    check(f"{bad}:4:7: plugins.path: {gw.config} is not a directory" in err, f"a file at its line: {err!r}")
    check(len([l for l in err.splitlines() if l.startswith(bad + ":")]) == 2, f"nothing else is wrong: {err!r}")
    rc, out, err = gw.cli("plugins", "-c", bad)
    check(f"{bad}:3:7: plugins.path: {missing} does not exist" in err, f"plugins says it too: {err!r}")
    check(re.search(r"^thirdparty +channel ", out, re.M) is not None, f"and lists what loads: {out}")

    # A plugin's config keys, with types, defaults, flags and help.
    rc, out, err = gw.cli("plugins", "webhook")
    check(rc == 0 and out.startswith("webhook: channel plugin "), f"plugins webhook describes it: {rc} {out!r} {err!r}")
    check(re.search(r"^  secret +string +- +secret +HMAC-SHA256 key", out, re.M) is not None, f"secret: {out}")
    check(re.search(r"^  timeout +duration +5s +- +outbound request timeout", out, re.M) is not None, f"timeout: {out}")
    check(re.search(r"^  insecure +bool +false +- +accept unsigned", out, re.M) is not None, f"insecure: {out}")
    rc, out, err = gw.cli("plugins", "telegram")
    check(re.search(r"^  token +string +- +required,secret +the bot token", out, re.M) is not None,
          f"a required secret key says so: {out}")
    check(re.search(r'^  api_base_url +string +"https://api.telegram.org" ', out, re.M) is not None,
          f"a string default is quoted: {out}")
    rc, out, err = gw.cli("plugins", "webhok")
    check(rc == 1 and "no plugin named 'webhok' (did you mean 'webhook'?)" in err, f"unknown name: {rc} {err!r}")

    # Built for the next ABI minor: listed, described and started with a notice, never refused.
    rc, out, err = gw.cli("--version")
    major, minor = map(int, re.search(r"plugin ABI (\d+)\.(\d+)", out).groups())
    host, newer = f"{major}\\.{minor}", f"{major}\\.{minor + 1}"
    notice = re.compile(rf"built for plugin ABI {newer}, newer than this host's {host}: loaded without the optional "
                        rf"slots ABI {newer} and later added: its descriptor's \d+ bytes past '\w+' are ignored, and the "
                        rf"host functions after '\w+' are absent")
    rc, out, err = gw.cli("plugins", "-c", gw.config)
    check(re.search(rf"^newer +channel +3\.0\.0 +{newer} ", out, re.M) is not None, f"the newer plugin is listed: {out}")
    check(re.search(r"^notice: \S+bad_newer\.so: was " + notice.pattern, out, re.M) is not None, f"with a notice: {out}")
    check("bad_newer.so" not in "".join(l for l in out.splitlines() if l.startswith("refused")), "not refused")
    rc, out, err = gw.cli("plugins", "-c", gw.config, "newer")
    check(rc == 0 and notice.search(out) is not None, f"plugins newer shows the notice: {out!r}")
    gw.start()
    check(notice.search(gw.read_log()) is not None, "the gateway logs the notice at start")
    check(gw.stop() == 0, "clean exit")
finally:
    gw.cleanup()
done()
