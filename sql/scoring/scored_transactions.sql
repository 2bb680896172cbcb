-- Every record, scored once: the one place the model runs. Records that can not be scored keep
-- their reject_reason and have no fraud_prob; the models after this one pick the rows they need,
-- and the runner writes them all from one pass (README "How the streams run").
-- A txn_id sent twice is scored twice (no state per txn_id): its alerts share the txn_id key,
-- consumers de-duplicate on it, and `runner audit` counts txn_ids appearing twice.
-- fraud_prob is the trained model as a SQL function; it takes the features in feature_list order.
WITH scored AS (
  SELECT
    kafka_partition, kafka_offset, kafka_timestamp, value, reject_reason,
    txn_id, event_time, Time, {{ feature_list() }}, Class,
    CASE WHEN reject_reason IS NULL THEN fraud_prob({{ feature_list() }}) END AS fraud_prob
  FROM {{ ref('stg_parsed') }}
)

SELECT
  *,
  -- at the threshold counts as an alert; a rejected record never is one
  coalesce(fraud_prob >= {{ var('threshold') }}, FALSE) AS is_alert
FROM scored
