"""SQLAlchemy 2 queries named from the domain. They run on the caller's session and never commit.

Lock order (every transaction that takes several row locks takes them in this order, so no two of
ours can wait on each other in a cycle): existing order rows being amended or cancelled (by id), or
read with a shared lock by client_order_id -> accounts, sorted by (user_id, asset) -> users, sorted by
id (placing counts their open orders) -> `market_sequences` (the API's per-market command counter, held
to commit; last, so that the one lock all of a market's orders share is held for the shortest time).
The matching worker takes `market_state` first, then order rows by id, then accounts sorted by
(user_id, asset); it never takes `market_sequences`. A new order row is invisible to others until
commit, so inserting it takes no lock anyone waits on (except a concurrent duplicate
`client_order_id`, which the placing service retries).
"""
