-- Every record, scored once: the one place the model runs. The models after this one pick the
-- rows they need, and the runner writes them all from one pass (README "How the streams run").
-- A record with a reject_reason is never an alert; its fraud_prob means nothing (its features
-- are missing or not finite), and no model after this one passes it on.
-- A txn_id sent twice is scored twice (no state per txn_id): its alerts share the txn_id key,
-- consumers de-duplicate on it, and `runner audit` counts txn_ids appearing twice.
-- fraud_prob is the trained model as a SQL function; it takes the features in feature_list order.
WITH scored AS (
  SELECT
    kafka_partition, kafka_offset, kafka_timestamp, value, reject_reason,
    txn_id, event_time, Time, {{ feature_list() }}, Class,
    fraud_prob({{ feature_list() }}) AS fraud_prob
  FROM {{ ref('stg_parsed') }}
)

SELECT
  *,
  -- at the threshold counts as an alert
  coalesce(reject_reason IS NULL AND fraud_prob >= {{ var('threshold') }}, FALSE) AS is_alert
FROM scored
