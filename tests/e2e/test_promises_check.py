"""`parley check` on the sla: and surveys: sections: every mistake named at FILE:LINE:COL with what
to write instead; a good file and examples/promises.yaml pass."""
import os

from harness import Gateway, check, done

BAD = """channels:
  - name: hooks
    type: webhook
    config: { secret: abc }
sla:
  warning_at: 1.5
  calendars:
    seoul: { timezone: Asia/Seol, from: "09:00", to: "18:00" }
    pusan: { timezone: Asia/Seoul, from: "09:00", to: "18:00", holidays: ["12/25"] }
  policies:
    - name: vip
      business_hours: busan
      first_response: 1x
    - name: none
      match: { tem: support, channel: wa }
surveys:
  - survey: cast
    channels: [hook]
    text: { en: "" }
  - survey: csat
    dealy: 5m
"""
GOOD = """channels:
  - name: hooks
    type: webhook
    config: { secret: abc }
sla:
  calendars:
    seoul: { timezone: Asia/Seoul, from: "09:00", to: "18:00", holidays: ["2026-12-25"] }
  policies:
    - name: vip
      match: { team: support, label: vip }
      business_hours: seoul
      first_response: 1h
      next_response: 30m
      resolution: 2d
    - name: everyone
      business_hours: { timezone: UTC, days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00" }
      resolution: 3d
surveys:
  - survey: nps
    channels: [hooks]
    delay: 1h
    buttons: false
    text: { en: "From 0 to 10, would you recommend us?", ko: "0~10점으로 추천 의향을 알려 주세요." }
"""
gw = Gateway()
try:
    path = os.path.join(gw.dir, "promises.yaml")
    with open(path, "w") as f:
        f.write(BAD)
    rc, out, err = gw.cli("check", "-c", path)
    check(rc != 0, f"check fails: {rc}")
    want = [
        ":6:15: warning_at must be a fraction between 0 and 1, such as 0.8",
        ":8:12: unknown timezone 'Asia/Seol'",
        ":9:12: business_hours holiday '12/25' is not a date such as \"2026-12-25\"",
        ":12:23: no calendar 'busan' under sla.calendars",
        ":13:23: first_response: '1x' has an unknown duration unit",
        ":15:16: unknown key 'tem' in an sla policy's match: did you mean 'team'?",
        ":15:39: sla policy 'none' matches channel 'wa', which is not under channels:",
        ":14:7: sla policy 'none' promises nothing",
        ":17:13: survey must be csat (1-5) or nps (0-10)",
        ":18:16: a survey names channel 'hook', which is not under channels:",
        ":19:17: text for 'en' must be a non-empty text",
        ":21:5: unknown key 'dealy' in a survey: did you mean 'delay'?",
        ":20:5: a survey needs text",
    ]
    lines = err.strip().splitlines()
    for w in want:
        check(any(l.startswith(path + w) for l in lines), f"{w!r} in {lines}")
    check(len(lines) == len(want), f"one line per mistake: {lines}")
    with open(path, "w") as f:
        f.write(GOOD)
    rc, out, err = gw.cli("check", "-c", path)
    check(rc == 0, f"a good file passes: {rc} {err}")
    example = os.path.join(os.environ.get("PARLEY_SOURCE_DIR", "."), "examples", "promises.yaml")
    rc, out, err = gw.cli("check", "-c", example)
    check(rc == 0, f"examples/promises.yaml checks ok: {err}")
finally:
    gw.cleanup()
done()
