"""A third-party plugin (the SDK template) loads from plugins.path and takes messages."""
import os

from harness import Gateway, check, done

tpl = os.environ["PARLEY_TEMPLATE_PLUGINS"]
gw = Gateway(config_body=f"plugins:\n  path: [{tpl}]\n",
             extra_channels="  - name: my-echo\n    type: echo\n    config: { prefix: \"you said: \" }\n").start()
try:
    st, body = gw.request("POST", "/webhooks/my-echo", "안녕 hi".encode(), {"Content-Type": "text/plain"})
    check(st == 200, f"the template channel answers 200 after commit: {st} {body!r}")
    msgs = gw.list_all("my-echo")
    check(len(msgs) == 1 and msgs[0]["text"] == "you said: 안녕 hi", f"stored: {msgs}")
    check(msgs[0]["channel_type"] == "echo", "channel_type is the plugin's name")
    st, body = gw.request("POST", "/webhooks/my-echo", b"\xff\xfe", {"Content-Type": "text/plain"})
    check(st == 400, f"non-UTF-8 text refused with 400: {st}")
finally:
    gw.cleanup()
done()
