-- Session state outside transactions that pgcorral does not carry between server connections: settings it does not track, SQL PREPARE, temp tables, holdable cursors.
-- known-difference: transaction statement: transaction pooling runs each transaction on any server connection, so session state it does not track is not there for the next one (by design, as in PgBouncer)
SET work_mem = '7MB'
-- next
SHOW work_mem
-- next
PREPARE q(int) AS SELECT $1 * 2
-- next
EXECUTE q(21)
-- next
DEALLOCATE q
-- next
CREATE TEMP TABLE conf_session_tmp AS SELECT 1 AS a
-- next
SELECT count(*), sum(a) FROM conf_session_tmp
-- next
DROP TABLE conf_session_tmp
-- next
DECLARE held CURSOR WITH HOLD FOR SELECT x FROM generate_series(1, 5) x
-- next
FETCH 2 FROM held
-- next
CLOSE held
-- next
RESET work_mem
