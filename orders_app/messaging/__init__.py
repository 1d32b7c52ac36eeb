"""Kafka wiring: the codec, topic administration, and the outbox publisher/sweeper."""
