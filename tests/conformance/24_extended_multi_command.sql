-- The extended protocol refuses several commands in one Parse; the connection stays usable.
-- protocols: extended
SELECT 1; SELECT 2
-- next
BEGIN; SELECT 1
-- next
SELECT 'usable'
