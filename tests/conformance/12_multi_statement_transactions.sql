-- Transactions spread over and inside simple Query messages with several commands.
-- protocols: simple
-- modes: session transaction auto
BEGIN; SELECT 1; COMMIT
-- next
BEGIN; SELECT 1
-- next
SELECT 2; COMMIT
-- next
BEGIN; SELECT 1/0; SELECT 2
-- next
SELECT 3
-- next
ROLLBACK; SELECT 'ok'
-- next
BEGIN; SAVEPOINT s; SELECT nope; ROLLBACK TO s; SELECT 'not reached'; COMMIT
-- next
ROLLBACK TO s; SELECT 'recovered'
-- next
COMMIT; SELECT 'after'
-- next
SELECT 1; BEGIN; SELECT 2
-- next
COMMIT; BEGIN; ROLLBACK
