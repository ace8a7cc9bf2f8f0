"""`python -m service.store`: bring the customer store's schema to the newest migration.

The service also migrates at start-up; this command is for doing it ahead of a roll-out
(a migration that rebuilds indexes on a large table belongs in a quiet hour, not in the
first replica's start-up).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.config import settings_for_command
from service.store.customer_store import CustomerStore
from service.store.errors import StoreUnavailable


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.store", description=__doc__)
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    arguments = parser.parse_args(argv)
    url = arguments.database_url or settings_for_command().database_url
    store = CustomerStore(url)
    try:
        store.migrate()
        version = store.schema_version()
    except StoreUnavailable as error:
        sys.stderr.write(f"error: the customer store could not be migrated: {error}\n")
        return 1
    finally:
        store.dispose()
    sys.stdout.write(f"customer store at migration {version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
