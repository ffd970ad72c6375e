-- SHOW and current settings outside transactions, SET LOCAL outside a transaction (a warning), unknown settings.
SHOW server_version_num
-- next
SHOW TimeZone
-- next
SHOW DateStyle
-- next
SHOW client_encoding
-- next
SHOW search_path
-- next
SHOW IntervalStyle
-- next
SHOW application_name
-- next
SHOW standard_conforming_strings
-- next
SELECT current_user, session_user, current_database(), current_schema()
-- next
SET LOCAL work_mem = '1MB'
-- next
SHOW work_mem
-- next
SHOW no_such_setting
-- next
SELECT current_setting('no.such_setting', true) IS NULL
-- next
SELECT name, setting FROM pg_settings WHERE name IN ('integer_datetimes', 'max_identifier_length', 'block_size') ORDER BY name
