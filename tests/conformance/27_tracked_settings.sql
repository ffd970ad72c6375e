-- Session-level SET of the settings pgcorral carries from server connection to server connection (client_encoding, DateStyle, TimeZone, IntervalStyle, standard_conforming_strings, application_name), then RESET.
SET DateStyle = 'SQL, DMY'
-- next
SELECT '2024-05-17'::date AS d, '2024-05-17 10:00'::timestamp AS ts
-- next
SET TimeZone = 'America/New_York'
-- next
SELECT '2024-06-30 12:00+00'::timestamptz AS tstz, current_setting('TimeZone') AS tz
-- next
SET IntervalStyle = 'iso_8601'
-- next
SELECT '1 day 2 hours 3 minutes'::interval AS i
-- next
SET application_name = 'conformance'
-- next
SHOW application_name
-- next
SET standard_conforming_strings = off
-- next
SELECT 'back\\slash' AS s
-- next
RESET standard_conforming_strings
-- next
SET client_encoding = 'LATIN1'
-- next
SELECT 'caf' || chr(233) AS latin1, current_setting('client_encoding') AS enc
-- next
SELECT chr(8364)
-- next
RESET client_encoding
-- next
SHOW DateStyle
-- next
RESET DateStyle
-- next
SELECT '2024-05-17'::date AS d
-- next
RESET ALL
-- next
SELECT current_setting('TimeZone') AS tz, current_setting('IntervalStyle') AS style, current_setting('application_name') AS app
