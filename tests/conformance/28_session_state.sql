-- Session state outside transactions, in every pool mode: settings (replayed on the next server connection), SQL PREPARE, temp tables and holdable cursors (the server connection stays pinned to the client while they exist).
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
