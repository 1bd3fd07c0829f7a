"""HTTPS with http.tls, against a CA the test makes with the openssl command line:
`parley check` names the line of an unreadable or mismatched certificate or key; a
signed webhook over TLS (the test's CA verified) is answered 200 and stored; a client
offering only TLS 1.1 and a plaintext request on the TLS port get no answer; a
certificate replaced on disk is served after a restart, and no webhook in flight is
answered anything but 200 or 503 (each 200 stored, each 503 retried and stored once)."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings

from harness import PARLEY, Gateway, check, done, sign

TLS_CONFIG = "  tls: { cert: tls/server.crt, key: tls/server.key }\n"


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=Parley test {name}")


def make_server(d, ca, name):
    """A certificate for 127.0.0.1 and localhost signed by ca: d/name.crt and d/name.key."""
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN=localhost ({name})")
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def install(src_dir, name, dst_dir):
    """Put name's certificate and key in place as an operator would: new files renamed over the old."""
    for ext, dst in (("crt", "server.crt"), ("key", "server.key")):
        shutil.copyfile(os.path.join(src_dir, f"{name}.{ext}"), os.path.join(dst_dir, dst + ".new"))
        os.replace(os.path.join(dst_dir, dst + ".new"), os.path.join(dst_dir, dst))


def tls11_only(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 offers TLS 1.1 (SHA-1 handshake signatures) only at security level 0.
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    return ctx


def tls11_control(pki, cafile):
    """The TLS 1.1 client completes a handshake with a server that allows 1.1 (so a refusal is the gateway's)."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(os.path.join(pki, "a.crt"), os.path.join(pki, "a.key"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv.minimum_version = ssl.TLSVersion.TLSv1_1
    srv.set_ciphers("DEFAULT@SECLEVEL=0")
    ls = socket.create_server(("127.0.0.1", 0))
    port = ls.getsockname()[1]

    def serve():
        c, _ = ls.accept()
        try:
            srv.wrap_socket(c, server_side=True).close()
        except OSError:
            c.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        s = tls11_only(cafile).wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                           server_hostname="127.0.0.1")
        version = s.version()
        s.close()
    except OSError as e:
        version = repr(e)
    t.join()
    ls.close()
    return version


gw = Gateway(http_extra=TLS_CONFIG)
try:
    pki = os.path.join(gw.dir, "pki")
    tls_dir = os.path.join(gw.dir, "tls")
    os.makedirs(pki)
    os.makedirs(tls_dir)
    make_ca(pki, "ca")
    make_server(pki, "ca", "a")
    make_server(pki, "ca", "b")
    install(pki, "a", tls_dir)
    cafile = os.path.join(pki, "ca.crt")

    # parley check: paths are relative to the config file (run from elsewhere), errors at the file's line.
    bad = os.path.join(gw.dir, "bad.yaml")
    for cert, key, where, says in (
            ("pki/a.crt", "pki/a.key", None, None),
            ("pki/a.crt", "pki/b.key", ":5:10:", "http.tls.key '" + os.path.join(gw.dir, "pki/b.key")
             + "' is not the private key of the certificate in"),
            ("pki/none.crt", "pki/a.key", ":4:11:", "cannot be read: No such file or directory"),
            ("pki/a.key", "pki/a.key", ":4:11:", "holds no PEM certificate"),
            ("pki/a.crt", "pki/a.crt", ":5:10:", "holds no PEM private key")):
        with open(bad, "w") as f:
            f.write(f"http:\n  listen: 127.0.0.1:0\n  tls:\n    cert: {cert}\n    key: {key}\n")
        r = subprocess.run([PARLEY, "check", "-c", bad], capture_output=True, text=True, cwd="/")
        if where is None:
            check(r.returncode == 0, f"check accepts a matching pair given relative to the config: {r.stderr!r}")
        else:
            check(r.returncode != 0 and (bad + where) in r.stderr and says in r.stderr,
                  f"check of cert {cert}, key {key} names {where} and '{says}': {r.stderr!r}")
    with open(bad, "w") as f:
        f.write("http:\n  tls: { cert: pki/a.crt }\n")
    r = subprocess.run([PARLEY, "check", "-c", bad], capture_output=True, text=True)
    check(r.returncode != 0 and bad + ":2:8: http.tls needs both cert and key" in r.stderr,
          f"a tls: without key is refused at its line: {r.stderr!r}")

    gw.ssl_context = ssl.create_default_context(cafile=cafile)
    gw.start()

    # A signed webhook over HTTPS, the test's CA verified, is answered 200 and stored.
    conn = gw.connection()
    st, body = gw.post_message({"id": "tls-1", "from": "alice", "text": "over TLS"}, conn=conn)
    check(st == 200, f"a webhook over HTTPS is answered 200: {st} {body!r}")
    check(conn.sock.version() in ("TLSv1.2", "TLSv1.3"), f"negotiated {conn.sock.version()}")
    check(conn.sock.getpeercert(binary_form=True) == der(os.path.join(pki, "a.crt")), "the served certificate is a")
    conn.close()
    check([m["external_id"] for m in gw.list_all("hooks")] == ["tls-1"], "the webhook over HTTPS is stored")

    # Only TLS 1.2 and 1.3: a client offering TLS 1.1 at most is refused during the handshake.
    control = tls11_control(pki, cafile)
    check(control == "TLSv1.1", f"the TLS 1.1 client works against a server allowing 1.1: {control}")
    try:
        s = tls11_only(cafile).wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5),
                                           server_hostname="127.0.0.1")
        check(False, f"a TLS 1.1 client is refused, but it negotiated {s.version()}")
        s.close()
    except OSError as e:
        check(not isinstance(e, socket.timeout), f"a TLS 1.1 client is refused at once: {e!r}")

    # A plaintext request on the TLS port gets no HTTP answer and stores nothing.
    raw = json.dumps({"id": "plain-1", "from": "mallory", "text": "no TLS"}).encode()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(f"POST /webhooks/hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"X-Parley-Signature: {sign(gw.secret, raw)}\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw)
    got, t0 = b"", time.time()
    try:
        while time.time() - t0 < 5:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    check(not got.startswith(b"HTTP/"), f"a plaintext request on the TLS port gets no HTTP answer: {got[:60]!r}")
    check(time.time() - t0 < 5, "the plaintext connection is closed at once")

    # Replace the certificate on disk while webhooks flow, then restart.
    answers, seen, lock, stop = [], [], threading.Lock(), threading.Event()
    posted = []

    def poster(worker):
        conn, i = None, 0
        end = time.time() + 60
        while not stop.is_set() and time.time() < end:
            ext = f"p{worker}-{i}"
            i += 1
            with lock:
                posted.append(ext)
            body = json.dumps({"id": ext, "from": f"user{worker}", "text": "steady"}).encode()
            while time.time() < end:  # like a provider: redeliver until answered 2xx
                try:
                    if conn is None:
                        conn = gw.connection(timeout=10)
                        conn.connect()
                        with lock:
                            seen.append((time.time(), conn.sock.getpeercert(binary_form=True)))
                    conn.request("POST", "/webhooks/hooks", body,
                                 {"Content-Type": "application/json", "X-Parley-Signature": sign(gw.secret, body)})
                    r = conn.getresponse()
                    r.read()
                    with lock:
                        answers.append((ext, r.status))
                    if r.status == 200:
                        break
                    if r.status != 503:
                        break  # a wrong answer: recorded above, not retried
                except (OSError, http.client.HTTPException):
                    if conn:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
        if conn:
            conn.close()

    threads = [threading.Thread(target=poster, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    install(pki, "b", tls_dir)
    time.sleep(0.5)
    c = gw.connection(timeout=5)
    c.connect()
    check(c.sock.getpeercert(binary_form=True) == der(os.path.join(pki, "a.crt")),
          "until the restart the running gateway serves the certificate it started with")
    c.close()
    t_stop = time.time()
    rc = gw.stop(timeout=20)
    check(rc == 0, f"the gateway exits 0 on SIGTERM: {rc}")
    t_start = time.time()
    gw.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()

    a_der, b_der = der(os.path.join(pki, "a.crt")), der(os.path.join(pki, "b.crt"))
    after = [d for when, d in seen if when >= t_start]
    check(after and all(d == b_der for d in after),
          f"connections after the restart are served the new certificate: {len(after)} connection(s)")
    check(all(d == a_der for when, d in seen if when < t_stop), "connections before it were served the old one")
    wrong = [(e, st) for e, st in answers if st not in (200, 503)]
    check(not wrong, f"every answer during the replacement is 200 or 503: {wrong[:5]}")
    acked = {e for e, st in answers if st == 200}
    check(acked == set(posted), f"every webhook was acknowledged in the end: {len(set(posted) - acked)} missing")
    stored = [m["external_id"] for m in gw.list_all("hooks") if m["external_id"].startswith("p")]
    check(sorted(stored) == sorted(acked), f"each acknowledged webhook is stored once: {len(stored)} rows for "
          f"{len(acked)} acknowledged")
    check(len(acked) > 40, f"the webhooks kept flowing: {len(acked)} acknowledged")
    print(f"posted {len(posted)}, acknowledged {len(acked)}, 503s {sum(1 for _, st in answers if st == 503)}, "
          f"connections {len(seen)} ({len(after)} after the restart)")
finally:
    gw.cleanup()
done()
