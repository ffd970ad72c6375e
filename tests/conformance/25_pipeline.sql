-- Pipelining: every request of a run is sent at once, then the answers are read; errors do not disturb what follows.
-- pipeline
SELECT 1 AS first
-- next
SELECT 1/0
-- next
SELECT x FROM generate_series(1, 1000) x
-- next
DO $$ BEGIN RAISE NOTICE 'pipelined notice'; END $$
-- next
COPY (SELECT x FROM generate_series(1, 3) x) TO STDOUT
-- next
;
-- next
SELECT nope
-- next
SELECT repeat('y', 100000) AS big
-- next
SHOW DateStyle
-- next
SELECT 'last'
