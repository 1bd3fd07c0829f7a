"""Broadcasts and the customer-service window on the PostgreSQL store (see broadcasts.py), 300 contacts (the
1,000 of the acceptance run on SQLite in test_broadcast.py); skipped (77) without PostgreSQL."""
from broadcasts import run
from cluster import Postgres, need
from harness import done

need(nats=False)
pg = Postgres()
try:
    run(f"""storage:
  type: postgres
  config: {{ url: "{pg.url}", claim_timeout: 1s }}
""", n_wa=100, n_tg=100, n_sms=100, n_opt=5)
finally:
    pg.close()
done()
