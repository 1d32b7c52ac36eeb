"""The outbox closes the seed system's gap: an order answered 201 reaches Kafka even if Kafka was down."""
from __future__ import annotations

import json
import time

import pytest
import requests
from kafka import KafkaConsumer, TopicPartition

from orders_app import runtime_of
from orders_app.processes import ApiServer, Broker, WorkerProcess
from orders_app.reconcile import reconcile
from tests.support.names import unique_name
from tests.support.waits import wait_settled

pytestmark = pytest.mark.slow
KAFKA_FAST = {"KAFKA_REQUEST_TIMEOUT_MS": "1000", "OUTBOX_SWEEP_GRACE_MS": "3000",
              "OUTBOX_SWEEP_INTERVAL_MS": "200"}


def _read_order_events(bootstrap: str, wanted: set[int], timeout_s: float) -> list[dict]:
    """Every order-events record from the beginning, until `wanted` ids were seen (+ a quiet period)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=500, request_timeout_ms=5000)
    events, deadline, quiet_until = [], time.monotonic() + timeout_s, None
    try:
        partitions = None
        while time.monotonic() < deadline:
            if partitions is None:
                found = consumer.partitions_for_topic("order-events")
                if found:
                    partitions = [TopicPartition("order-events", p) for p in sorted(found)]
                    consumer.assign(partitions)
                    consumer.seek_to_beginning()
                else:
                    time.sleep(0.2)  # the restarted memory broker has no topic until a publisher writes again
                    continue
            for batch in consumer.poll(timeout_ms=300).values():
                events.extend(json.loads(record.value) for record in batch)
            if wanted <= {e["order_id"] for e in events}:
                quiet_until = quiet_until or time.monotonic() + 3
                if time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return events


@pytest.mark.parametrize("publisher", ["relay", "api"])
def test_orders_accepted_while_broker_is_down_all_arrive_in_sequence_order(app, stack_env, admin_headers, publisher):
    """Publishing is at-least-once (DESIGN): a send whose acknowledgement was lost is sent again. What must
    hold: every accepted order arrives, each market's events arrive in sequence order, and a repeat is only
    ever a re-send of identical events from the first unacknowledged one on (never a lone late event)."""
    broker = Broker("broker-outbox")
    env = dict(KAFKA_FAST, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, OUTBOX_PUBLISHER=publisher)
    api = ApiServer(f"api-outbox-{publisher}", workers=1, **env)
    worker = WorkerProcess(f"worker-outbox-{publisher}", **env)
    try:
        user = requests.post(f"{api.url}/api/admin/users", json={"name": unique_name()}, headers=admin_headers,
                             timeout=10).json()
        headers = {"Authorization": f"Bearer {user['api_key']}"}
        requests.post(f"{api.url}/api/admin/deposits", headers=admin_headers, timeout=10,
                      json={"userId": user["user"]["id"], "currency_symbol": "USD", "amount": "100000"})

        def place(symbol: str) -> tuple[int, float]:
            started = time.monotonic()
            response = requests.post(f"{api.url}/api/orders", headers=headers, timeout=30, json={
                "order_type": "buy", "currency_symbol": symbol, "price": "1", "quantity": "1"})
            assert response.status_code == 201, response.text
            return response.json()["order"]["id"], time.monotonic() - started

        place("BTC")  # warm: the API's publisher connects while the broker is up
        broker.stop()
        accepted = [place(symbol) for symbol in ["BTC", "ETH"] * 10]
        assert max(latency for _, latency in accepted) < 2.0, "a request waited for Kafka"
        down_ids = {order_id for order_id, _ in accepted}
        time.sleep(4)  # the outage itself: several seconds in which every publish attempt fails
        broker.start()  # a memory broker: it comes back with no topics at all

        events = _read_order_events(broker.bootstrap, down_ids, timeout_s=90)
        placed = [e for e in events if e["type"] == "order_placed" and e["order_id"] in down_ids]
        assert {e["order_id"] for e in placed} == down_ids, "an accepted order never reached Kafka"
        for symbol in ("BTC", "ETH"):
            arrived = [e for e in placed if e["currency_symbol"] == symbol]
            first = {}
            for event in arrived:
                assert first.setdefault(event["seq"], event) == event, "a repeat differs from the first send"
            seqs = [e["seq"] for e in arrived]
            assert sorted(first) == sorted(set(seqs)) and len(first) == 10
            # In order, or in order again from a re-send's first event on: each run is consecutive.
            runs = [[seqs[0]]]
            for seq in seqs[1:]:
                runs[-1].append(seq) if seq == runs[-1][-1] + 1 else runs.append([seq])
            assert runs[0] == sorted(first), f"{symbol} first delivery out of order: {seqs}"
            assert all(run[-1] == runs[0][-1] for run in runs), f"{symbol}: a lone late event: {seqs}"
            print(f"{publisher}: {symbol} {len(seqs)} events for 10 orders")
        assert all(e["version"] == 1 and e["order"]["currency_symbol"] == e["currency_symbol"] for e in placed)
        # The worker matched every accepted order although the broker lost them all: the database decides.
        ctx = runtime_of(app).ctx
        wait_settled(ctx)
        with ctx.uow() as uow:
            report = reconcile(uow.session)
        assert report.ok, report.render()
    finally:
        worker.stop()
        api.stop()
        broker.stop()
