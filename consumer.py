"""The matching worker: `python consumer.py` (the same as the `orders-worker` console script)."""
import sys

from orders_app.worker_main import main

if __name__ == "__main__":  # the guard also keeps the relay child (spawned) from running main()
    sys.exit(main())
