{{ config(topic='scored_events',
          watermark={'column': 'event_time', 'delay': var('watermark')}) }}

-- What the KPIs count, on event time: one small row per scored transaction. The runner writes
-- these rows to the topic `scored_events` in the same pass that scores and alerts, so the KPI
-- query reads them instead of parsing and scoring each transaction again. It applies the
-- watermark on reading: events later than the delay are left out of the windows (and counted)
-- instead of holding state forever.
SELECT event_time, Class, is_alert
FROM {{ ref('scored_transactions') }}
WHERE reject_reason IS NULL
