{{ config(
     sinks=[{'kind': 'console'},
            {'kind': 'kafka', 'topic': 'fraud_kpis', 'key': 'window_start'},
            {'kind': 'parquet', 'path': 'kpis'}],
     late_rows='late_transactions',
     output_mode='append',
     trigger='1 second') }}

-- Alert quality per event-time window, written once the watermark passes the window's end.
-- late_rows: the transactions that arrived behind kpi_events' watermark, left out of every window,
-- are kept in Parquet `late_transactions` with the watermark they missed (README "How the streams run").
-- tp: alerts on true frauds (Class = 1); fp: alerts on Class = 0. Alerts with no label count in
-- n_alert only. precision and recall are NULL when nothing was alerted / nothing was fraud.
-- window() takes its duration as a string, hence .text (the var as a quoted string literal).
WITH per_window AS (
  SELECT
    window.start AS window_start,
    window.end AS window_end,
    count(*) AS n_txn,
    count_if(is_alert) AS n_alert,
    count_if(Class = 1) AS n_fraud_true,
    count_if(is_alert AND Class = 1) AS tp,
    count_if(is_alert AND Class = 0) AS fp
  FROM {{ ref('kpi_events') }}
  GROUP BY window(event_time, {{ var('window').text }})
)

SELECT
  window_start, window_end, n_txn, n_alert, n_fraud_true, tp, fp,
  {{ safe_ratio('tp', 'tp + fp') }} AS precision,
  {{ safe_ratio('tp', 'n_fraud_true') }} AS recall
FROM per_window
