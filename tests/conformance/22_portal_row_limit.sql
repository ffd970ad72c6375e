-- Execute with a row limit: PortalSuspended, then Execute again (with Flush, no Sync) until the portal is done.
-- protocols: extended
-- max-rows: 3
SELECT x FROM generate_series(1, 10) x
-- next
SELECT x FROM generate_series(1, 3) x
-- next
SELECT 1 WHERE false
-- next
SELECT 1 / (5 - x) FROM generate_series(1, 10) x
-- next
VALUES (1)
-- next
SELECT nope
