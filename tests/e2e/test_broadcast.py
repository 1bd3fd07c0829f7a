"""Broadcasts and the customer-service window on the SQLite store (issue 15, acceptance 4; see broadcasts.py)."""
from broadcasts import run
from harness import done

# synchronous: normal: the figure under test is the rate limit, not this box's fsync.
run("""storage:
  type: sqlite
  config: { path: parley.db, claim_timeout: 1s, synchronous: normal }
""")
done()
