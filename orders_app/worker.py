"""The standalone worker process (`python consumer.py`): consume, match, settle; a relay child publishes.

Loop: poll `order-events` (consumer group, manual offsets) -> per market, settle the batch in one DB
transaction (services/settling.py, which writes the trade events to the outbox) -> commit the Kafka
offsets. A child process, the outbox relay (relay.py), publishes the trade events and stale outbox rows.
Kafka is the fast path; the database decides: every `CATCH_UP_INTERVAL_S` the worker compares each of
its markets' accepted sequence with its applied one and settles what Kafka did not deliver (a broker
that lost its topics, a lost message). Without a Kafka assignment it does that for every market — safe,
because `market_state` is locked by whichever worker settles a market. SIGTERM/SIGINT let the current
batch finish and commit; then it leaves the group cleanly and stops the relay.

A record is untrusted: one the worker cannot read, or whose content differs from the database's command
of its sequence, is set aside (messaging/dead_letters.py) and the market goes on with the database's
commands. No exception but a stop request ends the loop: an unexpected one is logged and counted, the
worker backs off and carries on, the database's catch-up covering whatever Kafka delivered meanwhile.
Over 300 lines because it is the process's whole loop — lifecycle, polling, catch-up, relay supervision and
metrics share the worker's state; the settlement itself is in services/, the Kafka wiring in messaging/.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from multiprocessing.process import BaseProcess

from orders_app import worker_metrics
from orders_app.messages import MarketCommand
from orders_app.messaging.codec import MalformedMessage, decode_market_event
from orders_app.messaging.dead_letters import DeadLetters
from orders_app.messaging.order_events import OrderEventsConsumer
from orders_app.relay import start_relay
from orders_app.repositories import outbox, settlement
from orders_app.services import ServiceContext
from orders_app.services.settling import MarketRuntime, SettledBatch, settle_commands
from orders_app.unit_of_work import run_transaction

log = logging.getLogger("orders_app.worker")
KAFKA_RETRY_BACKOFF_S = 2.0
POLL_TIMEOUT_MS = 100
CATCH_UP_INTERVAL_S = 0.5
CATCH_UP_GRACE_S = 1.0  # a command not delivered by Kafka within this is read from the database
RELAY_CHECK_INTERVAL_S = 1.0
SETTLED_ORDERS_PER_LOG_LINE = 100  # keeps a line well under log shippers' limits (Docker splits at 16 KiB)
CATCH_UP_SLICE_S = 2.0  # longest catch-up run before Kafka is polled again (well under max.poll.interval)
LOOP_ERROR_BACKOFF_S = 1.0
UNKNOWN_MARKET, DIFFERS_FROM_DATABASE = "unknown_market", "differs_from_database"


class Worker:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx
        self.settings = ctx.settings
        self.stopping = threading.Event()
        self.runtimes = {spec.name: MarketRuntime(spec) for spec in ctx.markets.values()}  # by market name
        self._consumer: OrderEventsConsumer | None = None
        self._relay: BaseProcess | None = None
        self.dead_letters = DeadLetters(self.settings)
        self._markets_read: bool | None = None  # markets re-read for this poll's records: None = not tried
        self._behind_since: dict[str, float] = {}
        self._next_catch_up = 0.0
        self._next_relay_check = 0.0
        self._next_metrics_refresh = 0.0
        self._kafka_retry_at = 0.0
        self.settled_commands = 0

    # --- lifecycle -----------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def request_stop(signum, _frame):
            log.info("stop requested", extra={"signal": signal.Signals(signum).name})
            self.stopping.set()
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def run(self) -> None:
        log.info("worker started", extra={"markets": sorted(self.runtimes)})
        while not self.stopping.is_set():
            try:
                self._run_once()
            except Exception:  # noqa: BLE001 - a worker that dies stops every market it holds
                log.exception("worker loop error; backing off")
                worker_metrics.LOOP_ERRORS.inc()
                self.stopping.wait(LOOP_ERROR_BACKOFF_S)
        self._close()
        log.info("worker stopped", extra={"settled_commands": self.settled_commands})

    def _run_once(self) -> None:
        consumer = self._consumer_or_none()
        if consumer is not None:
            self._consume_once(consumer)
        else:
            self.stopping.wait(0.2)
        now = time.monotonic()
        if now >= self._next_catch_up:
            self._next_catch_up = now + CATCH_UP_INTERVAL_S
            self._catch_up(now)
        if now >= self._next_relay_check:
            self._next_relay_check = now + RELAY_CHECK_INTERVAL_S
            self._supervise_relay()
        if self.settings.worker_metrics_port and now >= self._next_metrics_refresh:
            self._next_metrics_refresh = now + worker_metrics.REFRESH_INTERVAL_S
            self._refresh_gauges()

    def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # noqa: BLE001
                log.warning("consumer close failed", exc_info=True)
        self.dead_letters.close()
        self._stop_relay()

    # --- Kafka ----------------------------------------------------------------------------------------

    def _consumer_or_none(self) -> OrderEventsConsumer | None:
        if self._consumer is not None or time.monotonic() < self._kafka_retry_at:
            return self._consumer
        try:
            self._consumer = OrderEventsConsumer.connect(self.settings)
        except Exception as error:  # noqa: BLE001 - any Kafka failure: retry later, match from the DB
            log.warning("Kafka unavailable: %s", error)
            self._kafka_retry_at = time.monotonic() + KAFKA_RETRY_BACKOFF_S
        return self._consumer

    def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._kafka_retry_at = time.monotonic() + KAFKA_RETRY_BACKOFF_S
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # noqa: BLE001 - it is being dropped because Kafka failed
                log.debug("consumer close failed", exc_info=True)

    def owned_markets(self) -> set[str]:
        """Markets whose partition this worker holds; all of them while it has no Kafka assignment."""
        consumer = self._consumer
        if consumer is None:
            return set(self.runtimes)
        return {name for name in self.runtimes if consumer.owns(name)}

    def _consume_once(self, consumer: OrderEventsConsumer) -> None:
        try:
            polled = consumer.poll(POLL_TIMEOUT_MS)
        except Exception as error:  # noqa: BLE001
            log.warning("poll failed: %s", error)
            self._drop_consumer()
            return
        if not polled:
            return
        by_market: dict[str, list[MarketCommand]] = defaultdict(list)
        self._markets_read = None
        for record in polled:
            command = self._command_or_set_aside(record)
            if command is not None:
                by_market[command[0]].append(command[1])
        for name, commands in by_market.items():
            self._settle_all(name, commands)
        try:
            self.dead_letters.flush()
        except Exception as error:  # noqa: BLE001 - not copied: the records must come again, so no commit
            log.warning("DLQ copies not confirmed: %s; the records will be read again", error)
            self._drop_consumer()
            return
        try:
            consumer.commit()  # only after the database commit: a crash before it replays, harmlessly
        except Exception as error:  # noqa: BLE001 - a rebalance took the partitions: records come again
            log.warning("offset commit failed: %s", error)

    def metric_label(self, spec) -> str:
        """The `symbol` label of a market's metrics: the base asset for a market quoted in QUOTE_CURRENCY, as
        version 1 labelled it (and as a request may name it), else the market's name."""
        return spec.symbol if spec.quote_asset == self.settings.quote_currency else spec.name

    def market_name_of(self, event) -> str:
        """The market a record names: its `market`, or — a record written before markets were pairs, keyed and
        named by the base asset — `BASE-<QUOTE_CURRENCY>`, the only market such a record could mean."""
        return event.market or f"{event.symbol}-{self.settings.quote_currency}"

    def _command_or_set_aside(self, record) -> tuple[str, MarketCommand] | None:
        """(market name, command) of a record that reads as a command of a known market; else it is set aside
        (None). A market unknown while the database cannot say is not judged: the catch-up covers it."""
        try:
            event = decode_market_event(record.value)
        except MalformedMessage as error:
            self.dead_letters.set_aside(record, error.reason, str(error))
            return None
        name = self.market_name_of(event)
        if name not in self.runtimes:
            if self._markets_read is None:  # once per poll: a flood of unknown names costs one query
                self._markets_read = self._sync_markets_or_wait()
            if not self._markets_read:
                return None
        runtime = self.runtimes.get(name)
        if runtime is None:
            self.dead_letters.set_aside(record, UNKNOWN_MARKET, f"no market {name[:40]!r}")
            return None
        if event.market_id != runtime.spec.id:
            self.dead_letters.set_aside(record, DIFFERS_FROM_DATABASE,
                                        f"market {name} has id {runtime.spec.id}, not {event.market_id}")
            return None
        return name, MarketCommand(event.seq, event.event_type, event.order_id, event.request_id, record)

    # --- settling -------------------------------------------------------------------------------------

    def _settle_all(self, name: str, commands: list[MarketCommand]) -> None:
        """Batch after batch while records above the applied sequence remain (more than one batch holds,
        or some wait behind a gap), so each record is applied or judged now, not left to the catch-up. A
        record is judged once: the next round sees only those still ahead, not set aside."""
        while commands:
            batch = self._settle(name, commands)
            if batch is None or not batch.commands:
                return
            judged = {id(item.command) for item in batch.set_aside}
            commands = [c for c in commands if c.seq > batch.applied_seq and id(c) not in judged]

    def _settle(self, name: str, commands: list[MarketCommand], up_to_seq: int = 0) -> SettledBatch | None:
        """Settle one batch of the market; None if it failed."""
        runtime = self.runtimes[name]
        started = time.perf_counter()
        try:
            batch = run_transaction(lambda: settle_commands(runtime, commands, self.ctx, up_to_seq))
        except Exception:  # noqa: BLE001 - the batch is retried (Kafka redelivery or catch-up)
            log.exception("settling failed", extra={"market": name})
            worker_metrics.SETTLE_FAILURES.labels(self.metric_label(runtime.spec)).inc()
            return None
        for set_aside in batch.set_aside:
            self.dead_letters.set_aside(set_aside.command.record, DIFFERS_FROM_DATABASE, set_aside.detail)
        for order_id, why in batch.unprocessable:
            log.error("order rejected as unprocessable", extra={"market": name, "order_id": order_id, "error": why})
            worker_metrics.UNPROCESSABLE_COMMANDS.labels(self.metric_label(runtime.spec)).inc()
        if batch.commands:
            duration_s = time.perf_counter() - started
            self.settled_commands += batch.commands
            outcomes: dict[str, int] = defaultdict(int)
            for order in batch.orders:
                outcomes[order.status] += 1
            worker_metrics.observe_batch(self.metric_label(runtime.spec), batch.commands, batch.trades, duration_s,
                                         outcomes)
            log.info("settled batch", extra={
                "market": name, "seq": batch.applied_seq, "commands": batch.commands, "trades": batch.trades,
                "orders_changed": len(batch.orders), "duration_ms": round(duration_s * 1000, 2)})
            self._log_settled_orders(name, batch)
        return batch

    def _log_settled_orders(self, name: str, batch) -> None:
        """Every order the batch changed, with the request id that changed it (end-to-end tracing): a
        cancel's or merge's own, else the one that placed the order.

        At INFO they are grouped, `SETTLED_ORDERS_PER_LOG_LINE` to a line as [order_id, status, request_id]:
        a JSON line of its own per order cost ~22-35 us (~1.04 changed orders per command): 5 % more worker
        CPU and 8 % fewer orders/s in `python -m orders_app.bench.worker --orders 20000`, run side by side;
        grouped they cost ~2 us an order. At DEBUG each order also gets a line of its own."""
        if not log.isEnabledFor(logging.INFO):
            return
        orders = batch.orders
        for start in range(0, len(orders), SETTLED_ORDERS_PER_LOG_LINE):
            log.info("orders settled", extra={"market": name, "seq": batch.applied_seq, "orders": [
                [order.order_id, order.status, order.request_id]
                for order in orders[start:start + SETTLED_ORDERS_PER_LOG_LINE]]})
        if log.isEnabledFor(logging.DEBUG):
            for order in orders:
                log.debug("order settled", extra={
                    "market": name, "seq": batch.applied_seq, "order_id": order.order_id, "status": order.status,
                    "filled_quantity": str(order.filled_quantity), "request_id": order.request_id})

    def _sync_markets(self, force: bool = False) -> None:
        """Markets added while running get a runtime (the context re-reads them at most once a second
        unless `force`d)."""
        self.ctx.reload_markets(force=force)
        for name, spec in self.ctx.markets.items():
            runtime = self.runtimes.get(name)
            if runtime is None:
                self.runtimes[name] = MarketRuntime(spec)
                log.info("new market", extra={"market": name})
            elif runtime.spec.id == spec.id:
                runtime.spec = spec  # its status and rates (settling reads the rates in force itself)

    def _sync_markets_or_wait(self) -> bool:
        """`_sync_markets` for a record of an unknown market; False with the database down: the record is
        simply not settled now and the catch-up finds its command later."""
        try:
            self._sync_markets(force=True)
            return True
        except Exception as error:  # noqa: BLE001 - database down: the worker must outlive the outage
            log.warning("cannot read markets: %s", error)
            return False

    def _catch_up(self, now: float) -> None:
        """Settle committed commands that Kafka has not delivered within CATCH_UP_GRACE_S."""
        try:
            self._sync_markets()
            with self.ctx.uow() as uow:
                accepted = settlement.accepted_seqs(uow.session)
        except Exception as error:  # noqa: BLE001 - database down: try again next round
            log.warning("catch-up check failed: %s", error)
            return
        for name in self.owned_markets():
            runtime = self.runtimes[name]
            target = accepted.get(runtime.spec.id, 0)
            if target <= runtime.applied_seq:
                self._behind_since.pop(name, None)
                continue
            since = self._behind_since.setdefault(name, now)
            if now - since >= CATCH_UP_GRACE_S or runtime.book is None:
                log.info("catching up from the database", extra={"market": name, "from_seq": runtime.applied_seq,
                                                                  "to_seq": target})
                deadline = time.monotonic() + CATCH_UP_SLICE_S
                while (runtime.applied_seq < target and time.monotonic() < deadline
                       and not self.stopping.is_set() and self._catch_up_batch(name, target)):
                    pass
                if runtime.applied_seq >= target:
                    self._behind_since.pop(name, None)

    def _catch_up_batch(self, name: str, target: int) -> int:
        batch = self._settle(name, [], up_to_seq=target)
        return batch.commands if batch is not None else 0

    # --- metrics --------------------------------------------------------------------------------------

    def _refresh_gauges(self) -> None:
        """Lags and backlog, about once a second: two small queries and the consumer's own positions."""
        try:
            with self.ctx.uow() as uow:
                accepted = settlement.accepted_seqs(uow.session)
                applied = settlement.applied_seqs(uow.session)
                backlog_rows = outbox.unpublished_count(uow.session)
        except Exception as error:  # noqa: BLE001 - database down: the gauges keep their last values
            log.warning("metrics refresh failed: %s", error)
            return
        lags = {self.metric_label(spec): max(0, accepted.get(spec.id, 0) - applied.get(spec.id, 0))
                for spec in (runtime.spec for runtime in self.runtimes.values())}
        worker_metrics.set_sequence_lags(lags, backlog_rows)
        consumer = self._consumer
        if consumer is None:
            worker_metrics.set_kafka_lags({})
            return
        try:
            kafka_lags = consumer.lags()
        except Exception as error:  # noqa: BLE001 - a rebalance in between: next round
            log.debug("kafka lag not read: %s", error)
            return
        worker_metrics.set_kafka_lags(kafka_lags)

    # --- outbox relay ---------------------------------------------------------------------------------

    def _supervise_relay(self) -> None:
        """The relay child publishes trade events and stale outbox rows; restart it if it died."""
        if self._relay is None or not self._relay.is_alive():
            if self._relay is not None:
                log.warning("outbox relay exited with %s; restarting it", self._relay.exitcode)
            self._relay = start_relay()

    def _stop_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None and relay.is_alive():
            relay.terminate()  # SIGTERM: it finishes its batch and leaves
            relay.join(timeout=30)
