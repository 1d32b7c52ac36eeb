-- The outbox relay lists running transactions (information_schema.INNODB_TRX) to tell an id that will
-- never be committed from a row that is merely late; that takes the PROCESS privilege. Without it the
-- relay closes such gaps after OUTBOX_GAP_TIMEOUT_S instead.
GRANT PROCESS ON *.* TO 'orders'@'%';
