"""The WebSocket stream server (`python -m orders_app.stream`): trades, books, tickers and a user's
orders pushed from Kafka to any number of clients, without a database query per message."""
