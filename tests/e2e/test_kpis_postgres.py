"""KPIs (docs/kpis.md) on PostgreSQL: the same synthetic history as test_kpis.py, on a real
PostgreSQL server (tests/servers/postgres.sh), and `parley stats --json` gives the figures computed
here, per channel, team and agent: one definition, whichever store answers (business time is SQL
there, C here)."""
import subprocess

from cluster import Postgres, need
from harness import check, done
from kpihistory import History, compare, plan, run, sanity

need(nats=False)
pg = Postgres()
h = None


class Psql:
    """One psql session for the test's own rows (a process per row would take most of the test's time)."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.n = 0

    def run(self, sql):
        self.n += 1
        self.p.stdin.write(f"{sql};\nSELECT 'done {self.n}';\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        check(line.strip() == f"done {self.n}", f"psql ran {sql[:80]}: {line!r}")

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


psql = None


def insert(conv, type_, data, at):
    """Ratings and SLA due times: rows another module appends through conversation_events_append."""
    q = lambda s: "'" + s.replace("'", "''") + "'"
    psql.run("INSERT INTO conversation_events (conversation_id, type, data, at, actor, agent, team, channel, at_ms)"
             f" SELECT {q(conv)}, {q(type_)}, {q(data)}::jsonb, {q(at)}, {q(data)}::jsonb->>'by', c.assignee, c.team,"
             f" c.last_channel, parley_ms({q(at)}) FROM conversations AS c WHERE c.id = {q(conv)}")


try:
    psql = Psql(pg.url)
    h = History(storage=f'storage: {{ type: postgres, config: {{ url: "{pg.url}" }} }}\n', raw_sql=insert)
    h.start()
    customers, acts = plan(300)
    run(h, acts)
    got, total = compare(h, "2026-11-01", "2026-12-01", "channel")
    sanity(total)
    compare(h, "2026-11-01", "2026-12-01", "team")
    compare(h, "2026-11-01", "2026-12-01", "agent")
    compare(h, "2026-11-02T12:00:00.000Z", "2026-11-03T02:00:00.000Z", "team")
finally:
    if h:
        h.close()
    if psql:
        psql.close()
    pg.close()
done()
