"""A market seen through the API (the Flask test client), for end-to-end matching tests."""
from __future__ import annotations

from tests.support.waits import wait_settled


class Book:
    """A market seen through the API."""

    def __init__(self, client, ctx, symbol):
        self.client, self.ctx, self.symbol = client, ctx, symbol

    def place(self, user, **body):
        response = user.place(currency_symbol=self.symbol, **body)
        assert response.status_code == 201, response.json
        return response.json["order"]["id"]

    def settle(self):
        wait_settled(self.ctx)

    def order(self, user, order_id):
        return self.client.get(f"/api/orders/{order_id}", headers=user.headers).json["order"]

    def trades(self):
        return self.client.get("/api/trades", query_string={"currency_symbol": self.symbol}).json["trades"]

    def depth(self):
        book = self.client.get(f"/api/orderbook/{self.symbol}").json
        return ([(level["price"], level["quantity"]) for level in book["bids"]],
                [(level["price"], level["quantity"]) for level in book["asks"]])


def balances(user, asset):
    entry = user.balances().get(asset, {"available": "0", "locked": "0", "balance": "0"})
    return entry["balance"], entry["available"], entry["locked"]
