-- Dates, times, timestamps and intervals, including infinities and BC dates; date errors.
SELECT '2024-02-29'::date AS leap, 'infinity'::date AS inf, '-infinity'::date AS neg_inf,
       '4713-01-01 BC'::date AS first, '5874897-12-31'::date AS last, 'epoch'::date AS epoch
-- next
SELECT '23:59:59.999999'::time AS t1, '00:00'::time AS t2, '24:00'::time AS t3,
       '12:34:56+05:30'::timetz AS tz, '01:02:03.5'::time(0) AS rounded
-- next
SELECT '2000-01-01 00:00:00'::timestamp AS ts, '1999-12-31 23:59:59.123456'::timestamp AS micro,
       'infinity'::timestamp AS inf, '2024-06-30 12:00+02'::timestamptz AS tstz,
       '2024-01-01 00:00 America/New_York'::timestamptz AS ny, '0044-03-15 BC'::timestamp AS bc
-- next
SELECT '2024-06-30 12:00+02'::timestamptz AT TIME ZONE 'Asia/Kolkata' AS kolkata,
       '2024-06-30 12:00'::timestamp AT TIME ZONE 'Europe/Paris' AS paris
-- next
SELECT '1 year 2 months 3 days 04:05:06.789'::interval AS i1, '-1 day'::interval AS i2,
       '1000000 hours'::interval AS i3, interval '1' second * 1.5 AS i4,
       justify_interval('35 days 25 hours') AS i5, '-178000000 years'::interval AS i6
-- next
SELECT '2024-01-01'::date - '2023-01-01'::date AS days, '2024-01-31'::date + 1 AS next_day,
       date_trunc('month', '2024-05-17 10:00'::timestamp) AS month,
       extract(epoch FROM '2024-01-01 00:00+00'::timestamptz) AS epoch,
       to_char('2024-05-17'::date, 'Day DD Month YYYY') AS formatted,
       age('2024-05-17'::timestamp, '2000-02-29'::timestamp) AS age
-- next
SELECT d FROM generate_series('2024-01-30'::timestamp, '2024-03-01', '1 week') d
-- next
SELECT '2024-02-30'::date
-- next
SELECT make_date(2024, 13, 1)
-- next
SELECT '25:00'::time
-- next
SELECT 'infinity'::timestamp - '2024-01-01'::timestamp
