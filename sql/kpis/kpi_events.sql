{{ config(watermark={'column': 'event_time', 'delay': var('watermark')}) }}

-- What the KPIs count, on event time. The runtime applies the watermark to this view, so
-- events later than the delay are dropped from the windows instead of holding state forever.
SELECT event_time, Class, is_alert
FROM {{ ref('scored_transactions') }}
