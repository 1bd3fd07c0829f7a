"""Acceptance: `parley check` names FILE:LINE:COL and exits non-zero; `parley plugins`
lists the built-ins and the refused objects; the gateway starts with broken plugins
on plugins.path and still serves."""
import os
import re
import subprocess

from harness import BAD_PLUGINS, PARLEY, Gateway, check, done

gw = Gateway()
try:
    # A config whose unknown channel type sits on line 12.
    bad = os.path.join(gw.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("""# line 1
data_dir: var
http:
  listen: 127.0.0.1:0
storage:
  type: sqlite
channels:
  - name: hooks
    type: webhook
    config: { secret: abc }
  - name: wa-main
    type: whatsap
    config: {}
""")
    rc, out, err = gw.cli("check", "-c", bad)
    check(rc != 0, f"check exits non-zero on an unknown channel type (rc={rc})")
    check(re.search(re.escape(bad) + r":12:11: unknown channel type 'whatsap'", err) is not None,
          f"check names FILE:12:COL: {err!r}")

    # Several errors at once, each with its own position, with "did you mean".
    with open(bad, "w") as f:
        f.write("""channels:
  - name: hooks
    type: webhok
    config: { secrt: abc }
storage: { type: sqlite, config: { synchronus: full } }
htp: {}
""")
    rc, out, err = gw.cli("check", "-c", bad)
    lines = err.strip().splitlines()
    check(rc != 0, "check fails")
    check(any(":3:11: unknown channel type 'webhok': did you mean 'webhook'?" in l for l in lines), f"{lines}")
    check(any(":6:1: unknown key 'htp' in the top level: did you mean 'http'?" in l for l in lines), f"{lines}")
    check(any(":5:36: unknown key 'synchronus'" in l and "did you mean 'synchronous'?" in l for l in lines), f"{lines}")

    with open(bad, "w") as f:
        f.write('canned_responses:\n  hello: "Hi {{contact.nmae}}"\n')
    rc, out, err = gw.cli("check", "-c", bad)
    check(rc != 0 and ":2:10: canned response 'hello': unknown placeholder {{contact.nmae}}" in err, f"placeholders are checked: {err}")

    # A plugin's own checks run at check time too, at the config's position.
    with open(bad, "w") as f:
        f.write("""pipelines:
  - name: inbound
    steps:
      - route:
          type: rules
          config:
            rules:
              - match: { text: "(unclosed" }
                set: { team: x }
""")
    rc, out, err = gw.cli("check", "-c", bad)
    check(rc != 0 and re.search(r":7:13: step 'rules' of pipeline 'inbound': rule 1: bad text pattern: missing closing parenthesis", err),
          f"a bad pattern is found by check: {err}")
    with open(bad, "w") as f:
        f.write("""channels:
  - name: mail
    type: email
    config: { imap_url: "http://x", smtp_url: "smtp://x", username: u, password: p, from: a@b }
""")
    rc, out, err = gw.cli("check", "-c", bad)
    check(rc != 0 and ":4:13: channel 'mail': imap_url must start with imap:// or imaps://" in err, f"email urls: {err}")

    rc, out, err = gw.cli("check", "-c", gw.config)
    check(rc == 0 and "ok" in out, f"a valid config checks ok: {rc} {out} {err}")

    rc, out, err = gw.cli("check", "-c", os.path.join(gw.dir, "missing.yaml"))
    check(rc != 0 and "cannot open the config file" in err, f"missing file: {err}")

    # The example config is valid as shipped.
    example = os.path.join(os.environ.get("PARLEY_SOURCE_DIR", "."), "examples", "parley.yaml")
    rc, out, err = gw.cli("check", "-c", example)
    check(rc == 0, f"examples/parley.yaml checks ok: {err}")

    # Every example config checks, given its environment variables.
    env = dict(os.environ, WA_PHONE_NUMBER_ID="1", WA_ACCESS_TOKEN="t", META_APP_SECRET="s", WA_VERIFY_TOKEN="v",
               FB_PAGE_ID="1", FB_PAGE_TOKEN="t", META_VERIFY_TOKEN="v", IG_ACCOUNT_ID="2", IG_PAGE_TOKEN="t",
               TG_TOKEN="1:x", TG_SECRET="s", TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t",
               SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", MAIL_USER="u", MAIL_PASSWORD="p")
    env.update(KAKAO_SKILL_SECRET="s", KAKAO_BOT_ID="5a548e36aea1a43fa851ecd9", WECHAT_APP_ID="wx1",
               WECHAT_APP_SECRET="s", WECHAT_TOKEN="t", WECHAT_AES_KEY="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
               WECHAT_ORIGINAL_ID="gh_1")
    env.update(LINE_CHANNEL_SECRET="s", LINE_CHANNEL_ACCESS_TOKEN="t", LINE_BOT_USER_ID="U" + "0" * 32,
               VIBER_AUTH_TOKEN="t")
    examples = os.path.join(os.environ.get("PARLEY_SOURCE_DIR", "."), "examples")
    for name in sorted(os.listdir(examples)):
        if name.endswith(".yaml"):
            r = subprocess.run([PARLEY, "check", "-c", os.path.join(examples, name)], capture_output=True, text=True, env=env)
            check(r.returncode == 0, f"examples/{name} checks: {r.stderr}")
    r = subprocess.run([PARLEY, "check", "-c", os.path.join(examples, "whatsapp.yaml")], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("WA_")})
    check(r.returncode != 0 and "environment variable WA_PHONE_NUMBER_ID is not set" in r.stderr,
          f"an unset secret is named: {r.stderr}")

    # plugins lists the built-ins.
    rc, out, err = gw.cli("plugins")
    check(rc == 0, "plugins exits 0")
    for name, kind in (("webhook", "channel"), ("whatsapp", "channel"), ("messenger", "channel"),
                       ("instagram", "channel"), ("telegram", "channel"), ("twilio", "channel"), ("slack", "channel"),
                       ("sqlite", "store"), ("dedupe", "step")):
        check(re.search(rf"^{name}\s+{kind}\s+\S+\s+1\.3\s+/\S+\.so$", out, re.M) is not None,
              f"plugins lists {name} ({kind}): {out}")

    # With the broken plugins on plugins.path: each refused with its reason.
    with open(gw.config, "a") as f:
        f.write(f"plugins:\n  path: [{BAD_PLUGINS}]\n")
    rc, out, err = gw.cli("plugins", "-c", gw.config)
    check("thirdparty" in out, "a good third-party plugin on plugins.path is listed")
    for needle in ("magic 0xdeadbeef", "built for plugin ABI 2.3 but this host speaks ABI 1.3",
                   "descriptor of 24 bytes", "no entry symbol", "second channel plugin named 'webhook'"):
        check(needle in out, f"plugins shows the refusal '{needle}'")

    # ...and the gateway still starts and serves with the others.
    gw.start()
    st, _ = gw.post_message({"id": "a", "from": "b", "text": "still works"})
    check(st == 200, f"the gateway serves with broken plugins around: {st}")
    log = gw.read_log()
    check("refused" in log and "bad_abi2.so" in log, "the refusals are logged at start")
    check(gw.stop() == 0, "clean exit")

    # --help on each command.
    for cmd in ("run", "check", "plugins", "tail", "api", "send"):
        rc, out, err = gw.cli(cmd, "--help")
        check(rc == 0 and out.startswith(f"usage: parley {cmd}"), f"{cmd} --help")
finally:
    gw.cleanup()
done()
