-- Every valid transaction with its fraud probability and whether it is an alert.
-- A txn_id sent twice is scored twice (no state per txn_id): its alerts share the txn_id key,
-- consumers de-duplicate on it, and `runner audit` counts txn_ids appearing twice.
-- fraud_prob is the trained model as a SQL function; it takes the features in feature_list order.
WITH scored AS (
  SELECT
    txn_id, event_time, Time, {{ feature_list() }}, Class,
    kafka_partition, kafka_offset, kafka_timestamp,
    fraud_prob({{ feature_list() }}) AS fraud_prob
  FROM {{ ref('stg_transactions') }}
)

SELECT
  *,
  -- at the threshold counts as an alert
  fraud_prob >= {{ var('threshold') }} AS is_alert
FROM scored
