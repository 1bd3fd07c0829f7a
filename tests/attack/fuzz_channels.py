"""Bounded random mutations of signed payloads to every channel type, against the gateway on
127.0.0.1 (run it with the ASan+UBSan build).  Fails when the gateway dies, answers 5xx other
than 503, or the sanitizers report anything.

PARLEY_BIN=build-asan/parley python3 tests/attack/fuzz_channels.py [iterations]
"""
import base64, hashlib, hmac, json, os, random, sys, time, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from fakeprovider import FakeProvider  # noqa: E402
from harness import Gateway, fixture  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
WA, FB, SL, TG = "wa-app-secret", "fb-app-secret", "slack-signing", "tg-secret"
AC, TW, PUBLIC = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "twilio-auth-token", "https://parley.example.com"
fake = FakeProvider()
gw = Gateway(http_extra=f"  public_url: {PUBLIC}\n", extra_channels=f"""  - name: wa
    type: whatsapp
    config: {{ phone_number_id: "106540352242922", access_token: t, app_secret: {WA}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: fb
    type: messenger
    config: {{ page_id: "1234567890", access_token: t, app_secret: {FB}, verify_token: v, api_base_url: "{fake.url}" }}
  - name: tg
    type: telegram
    config: {{ token: "123:abc", secret_token: {TG}, api_base_url: "{fake.url}" }}
  - name: sms
    type: twilio
    config: {{ account_sid: {AC}, auth_token: {TW}, from: "+14155550100", api_base_url: "{fake.url}" }}
  - name: sl
    type: slack
    config: {{ bot_token: xoxb-1, signing_secret: {SL}, api_base_url: "{fake.url}" }}
pipelines:
  - name: inbound
    steps:
      - dedupe: {{}}
      - identify: {{}}
      - thread: {{}}
""").start()
rnd = random.Random(int(os.environ.get("FUZZ_SEED", "1234")))
SPICE = [b"\\u0000", b"\\ud800", b"\xc0\x80", b"\xed\xa0\x80", b"\x00", b"1e999", b"-0", b"9007199254740993",
         b"[" * 80, b"\"", b"\\", b"{}", b"[]", b"null", b"\"\"", b"%00", b"+", b"&", b"=", b"A" * 700,
         b"\x0c", b"\xef\xbb\xbf", b"18446744073709551616", b"-9223372036854775809", b"1e-400", b"NaN"]


def mutate(b):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        pos = rnd.randrange(len(b) + 1)
        op = rnd.random()
        if op < 0.5:
            b[pos:pos] = rnd.choice(SPICE)
        elif op < 0.8 and len(b) > 1:
            del b[pos:pos + rnd.randint(1, 8)]
        else:
            b[pos:pos] = bytes([rnd.randrange(256)])
    return bytes(b)


def meta(secret, body, ch):
    return gw.request("POST", "/webhooks/" + ch, body, {"Content-Type": "application/json",
                      "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()})


def tg(body):
    return gw.request("POST", "/webhooks/tg", body, {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG})


def slack(body, sub="", ct="application/json"):
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SL.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return gw.request("POST", "/webhooks/sl" + sub, body, {"Content-Type": ct, "X-Slack-Request-Timestamp": ts,
                      "X-Slack-Signature": sig})


def sms(form):
    try:
        params = urllib.parse.parse_qsl(form.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    except Exception:
        params = []
    data = PUBLIC + "/webhooks/sms" + "".join(k + v for k, v in sorted(params))
    sig = base64.b64encode(hmac.new(TW.encode(), data.encode("latin-1", "replace"), hashlib.sha1).digest()).decode()
    return gw.request("POST", "/webhooks/sms", form, {"Content-Type": "application/x-www-form-urlencoded",
                      "X-Twilio-Signature": sig})


def seeds(d):
    return [fixture(d, f) for f in sorted(os.listdir(os.path.join("tests", "fixtures", d))) if f.endswith(".json")]


targets = []
for s in seeds("whatsapp"):
    targets.append((lambda b: meta(WA, b, "wa"), s))
for s in seeds("messenger") if os.path.isdir("tests/fixtures/messenger") else []:
    targets.append((lambda b: meta(FB, b, "fb"), s))
for s in seeds("telegram"):
    targets.append((tg, s))
for s in seeds("slack") if os.path.isdir("tests/fixtures/slack") else []:
    targets.append((slack, s))
targets.append((lambda b: gw.post_message(None, raw=b),
                b'[{"id":"f1","from":"u","text":"t","meta":{"a":[1,2,{"b":"c"}]},"attachments":[{"url":"http://x"}]}]'))
targets.append((sms, b"MessageSid=SM1&AccountSid=" + AC.encode() + b"&From=%2B15551234567&To=%2B14155550100"
                b"&Body=hi+there&NumMedia=1&MediaUrl0=http%3A%2F%2F127.0.0.1%3A1%2Fm&Latitude=1.5&Longitude=2"))
targets.append((lambda b: slack(b, "/interactive", "application/x-www-form-urlencoded"),
                b"payload=" + urllib.parse.quote(json.dumps({"type": "block_actions", "team": {"id": "T"},
                "user": {"id": "U"}, "actions": [{"action_id": "a", "action_ts": "1.1", "value": "v"}]})).encode()))
bad = []
statuses = {}
try:
    for i in range(N):
        post, seed = targets[i % len(targets)]
        body = mutate(seed)
        try:
            st, resp = post(body)
        except OSError as e:
            st, resp = -1, str(e).encode()
        statuses[st] = statuses.get(st, 0) + 1
        if st == -1 or (st >= 500 and st != 503):
            bad.append((st, body[:200], resp[:200]))
        if gw.proc.poll() is not None:
            bad.append(("died", body[:300], b""))
            break
finally:
    gw.stop()
    log = gw.read_log()
    san = [l for l in log.splitlines() if "runtime error" in l or "Sanitizer" in l or "SUMMARY" in l]
    gw.cleanup()
    fake.close()
print("statuses", statuses)
for b in bad[:10]:
    print("BAD", b)
for l in san[:20]:
    print("SAN", l)
sys.exit(1 if bad or san else 0)
